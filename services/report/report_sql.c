/*
 * report_sql.c -- the reporting service's statements and the transactions
 * that store runs with their reports and evidence.
 *
 * Design notes:
 *  - Counts are not counted per request: the dashboard and the
 *    schedule-run report read the projections of migration 0014
 *    (counters that triggers keep per statement, folded by the evidence
 *    sequencer; the open routes' SLO deadlines and the unacknowledged
 *    pairs as indexed sets), so a read touches a few hundred rows at any
 *    store size and stays exact.
 *  - "Open" escalations: routes of a (plan, provider) pair whose latest
 *    acknowledgement (ack_current) is neither resolved nor dismissed, or
 *    that has none. read_fresh_counts (0014) is that definition over the
 *    tables; the triggers keep it, read_projections_diff checks it.
 *  - Exactly once per (schedule, window) is the UNIQUE (schedule_id,
 *    window_start) of report_runs: the run is inserted with ON CONFLICT DO
 *    NOTHING; whoever inserts nothing returns the stored run instead.
 *  - Evidence pages and traces read timestamps as epoch microseconds and
 *    format them with cv_time_format, so every time has one form.
 */
#include "report_sql.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_evidence.h"
#include "cv_id.h"
#include "cv_record.h"
#include "cv_rpc.h"
#include "cv_time.h"
#include "cv_transcode.h"

/* A record larger than this is not inlined in an evidence page: the
 * page must fit in one RPC reply (CV_RPC_REPLY_MAX). A whole-store retry
 * plan at 100k records is about 3.3 MB, well below. */
#define REPORT_SQL_RECORD_INLINE_MAX (CV_RPC_REPLY_MAX / 8)

/*
 * The statement table is laid out by hand (clang-format would split the
 * SQL at arbitrary points around the macros).
 */
// clang-format off
#define REPORT_SQL_EVENT_COLS                                                  \
    "SELECT e.id, e.kind, e.record_id, e.plan_id, e.provider, e.actor,"        \
    " e.request_id, (extract(epoch FROM e.created_at) * 1000000)::bigint,"

/* $1 below this id, $2 rows, $3 rows to skip, filters from $4. */
#define REPORT_SQL_LIST(where)                                                 \
    REPORT_SQL_EVENT_COLS                                                      \
    " e.record::text, e.principal FROM evidence_events e"                     \
    " WHERE e.id < $1::bigint"           \
    where                                                                      \
    " ORDER BY e.id DESC LIMIT $2::int OFFSET $3::bigint"
/* The exact number of events a filter matches; filters from $1. */
#define REPORT_SQL_COUNT(where)                                                \
    "SELECT count(*) FROM evidence_events e WHERE true" where

/* A whole-store counter of migration 0014, summed over providers. */
#define REPORT_SQL_N(counter)                                                  \
    " coalesce(sum(n) FILTER (WHERE counter = " #counter "), 0)"
/* The first and the last UTC hour of the dashboard's chart ($1 now). */
#define REPORT_SQL_HOUR_LAST                                                   \
    "date_trunc('hour', $1::timestamptz, 'UTC')"
#define REPORT_SQL_HOUR_FIRST                                                  \
    "(" REPORT_SQL_HOUR_LAST " - interval '23 hours')"

/* A stored run's record is its evidence event (migration 0013). */
#define REPORT_SQL_RUN_EVENT                                                   \
    " JOIN evidence_events e ON e.kind = '" CV_KIND_REPORT_RUN "'"             \
    " AND e.record_id = r.run_id"

const cv_db_statement report_sql_statements[] = {
    /* Writes only when something changed: under REPEATABLE READ, touching
     * a row another caller just wrote is a serialization failure, and
     * every schedule-run call of a busy schedule would collide. */
    {"report_upsert_schedule",
     "INSERT INTO report_schedules (schedule_id, interval_minutes, cadence,"
     " enabled, recovery_slo_minutes, generated_by, created_at, updated_at)"
     " SELECT $1, $2::int, $3, $4::boolean, $5::int, $6, $7::timestamptz,"
     " $7::timestamptz"
     " WHERE NOT EXISTS (SELECT 1 FROM report_schedules WHERE"
     " schedule_id = $1 AND interval_minutes = $2::int AND cadence = $3"
     " AND enabled = $4::boolean AND recovery_slo_minutes = $5::int"
     " AND generated_by IS NOT DISTINCT FROM $6)"
     " ON CONFLICT (schedule_id) DO UPDATE SET"
     " interval_minutes = EXCLUDED.interval_minutes,"
     " cadence = EXCLUDED.cadence, enabled = EXCLUDED.enabled,"
     " recovery_slo_minutes = EXCLUDED.recovery_slo_minutes,"
     " generated_by = EXCLUDED.generated_by,"
     " updated_at = EXCLUDED.updated_at"},
    {"report_schedule_state",
     "SELECT enabled FROM report_schedules WHERE schedule_id = $1"},
    /* Serialises the calls that add an enabled schedule (migration
     * 0011): a concurrent one fails with 40001 and runs again. */
    {"report_schedule_guard",
     "UPDATE report_schedule_guard SET changes = changes + 1 WHERE id = 1"},
    {"report_schedule_counts",
     "SELECT count(*) FILTER (WHERE enabled),"
     " count(*) FILTER (WHERE enabled AND generated_by = $1)"
     " FROM report_schedules"},
    {"report_find_run",
     "SELECT e.record::text FROM report_runs r" REPORT_SQL_RUN_EVENT
     " WHERE r.schedule_id = $1 AND r.window_start = $2::timestamptz"},
    /* The newest run's record: its report is the latest report. */
    {"report_latest_run",
     "SELECT e.record::text FROM report_runs r" REPORT_SQL_RUN_EVENT
     " ORDER BY r.seq DESC LIMIT 1"},
    /* Run history: $1 below this seq, $2 rows, $3 the schedule. */
    {"report_runs_0",
     "SELECT r.seq, e.record::text FROM report_runs r" REPORT_SQL_RUN_EVENT
     " WHERE r.seq < $1::bigint ORDER BY r.seq DESC LIMIT $2::int"},
    {"report_runs_1",
     "SELECT r.seq, e.record::text FROM report_runs r" REPORT_SQL_RUN_EVENT
     " WHERE r.seq < $1::bigint AND r.schedule_id = $3"
     " ORDER BY r.seq DESC LIMIT $2::int"},
    /* The first key namespaces the lock: 0x52505254 is "RPRT". */
    {"report_try_lock",
     "SELECT pg_try_advisory_xact_lock(1380995668, hashtext($1))"},
    /* $1 now, $2 SLO minutes, $3/$4 the window, from the projections
     * (migration 0014): the open-route counters, past-SLO as open minus
     * the open unflagged routes started at or after now - SLO (an index
     * range of read_open_routes), window activity from hour and minute
     * buckets (read_window_counts). */
    {"report_counts",
     "WITH w AS (SELECT counter, sum(n) AS n"
     " FROM read_window_counts($3::timestamptz, $4::timestamptz)"
     " GROUP BY counter)"
     " SELECT" REPORT_SQL_N(20) "," REPORT_SQL_N(21) ","
     REPORT_SQL_N(20) " - (SELECT coalesce(sum(n), 0) FROM"
     " read_unbreached_since($1::timestamptz"
     " - $2::bigint * interval '1 minute')),"
     REPORT_SQL_N(23) "," REPORT_SQL_N(24) "," REPORT_SQL_N(25) ","
     " coalesce((SELECT n FROM w WHERE counter = 43), 0),"
     " coalesce((SELECT n FROM w WHERE counter = 40), 0),"
     " coalesce((SELECT retryable_count FROM retry_plans"
     " ORDER BY seq DESC LIMIT 1), 0),"
     " coalesce((SELECT n FROM w WHERE counter = 42), 0),"
     " (SELECT retry_plan_id FROM retry_plans ORDER BY seq DESC LIMIT 1),"
     " (SELECT plan_id FROM escalation_plans ORDER BY seq DESC LIMIT 1)"
     " FROM (SELECT counter, n FROM read_counts"
     " WHERE counter IN (20, 21, 23, 24, 25) AND bucket = '-infinity'"
     " UNION ALL SELECT counter, n FROM read_count_deltas"
     " WHERE counter IN (20, 21, 23, 24, 25)) x"},
    /* The same per provider; $5 the row limit. A provider's latest state
     * is that of its newest acknowledgement in the window (counter 46:
     * seq * 8 + state number) or of its open pairs' current ones (one
     * probe of read_ack_current_open), whichever is newer. */
    {"report_providers",
     "WITH o AS (SELECT provider,"
     " sum(n) FILTER (WHERE counter = 20) AS esc,"
     " sum(n) FILTER (WHERE counter = 21) AS critical,"
     " sum(n) FILTER (WHERE counter = 23) AS open_recovery,"
     " sum(n) FILTER (WHERE counter = 25) AS unacked"
     " FROM (SELECT counter, provider, n FROM read_counts"
     " WHERE counter IN (20, 21, 23, 25) AND bucket = '-infinity'"
     " UNION ALL SELECT counter, provider, n FROM read_count_deltas"
     " WHERE counter IN (20, 21, 23, 25)) x GROUP BY provider"
     " HAVING sum(n) FILTER (WHERE counter = 20) > 0)"
     ", ub AS (SELECT provider, n FROM read_unbreached_since($1::timestamptz"
     " - $2::bigint * interval '1 minute'))"
     ", pw AS (SELECT provider,"
     " max(n) FILTER (WHERE counter = 40) AS acks,"
     " max(n) FILTER (WHERE counter = 41) AS closed,"
     " max(n) FILTER (WHERE counter = 42) AS runs,"
     " max(n) FILTER (WHERE counter = 43) AS failed,"
     " max(n) FILTER (WHERE counter = 44) AS latest,"
     " max(n) FILTER (WHERE counter = 45) AS closed_at,"
     " max(n) FILTER (WHERE counter = 46) AS newest"
     " FROM read_window_counts($3::timestamptz, $4::timestamptz)"
     " GROUP BY provider)"
     ", names AS (SELECT provider FROM o UNION SELECT provider FROM pw"
     " WHERE runs > 0 OR acks > 0)"
     " SELECT n.provider, coalesce(o.esc, 0), coalesce(o.open_recovery, 0),"
     " coalesce(o.critical, 0), coalesce(o.esc, 0) - coalesce(ub.n, 0),"
     " coalesce(o.unacked, 0), coalesce(pw.failed, 0), coalesce(pw.acks, 0),"
     " read_ack_state_name(greatest(pw.newest, cur.newest) % 8),"
     " coalesce(pw.runs, 0), coalesce(pw.runs, 0) - coalesce(pw.failed, 0),"
     " coalesce(pw.closed, 0), pw.latest, pw.closed_at"
     " FROM names n LEFT JOIN o ON o.provider = n.provider"
     " LEFT JOIN ub ON ub.provider = n.provider"
     " LEFT JOIN pw ON pw.provider = n.provider"
     " LEFT JOIN LATERAL (SELECT c.seq * 8"
     " + read_ack_state_number(c.acknowledgement_state) AS newest"
     " FROM ack_current c WHERE c.provider = n.provider"
     " AND c.acknowledgement_state NOT IN ('resolved', 'dismissed')"
     " ORDER BY c.seq DESC LIMIT 1) cur ON true"
     " ORDER BY n.provider LIMIT $5::int"},
    {"report_insert_run",
     "INSERT INTO report_runs (run_id, schedule_id, window_start, window_end,"
     " generated_at, generated_by, alert_level, request_id)"
     " VALUES ($1, $2, $3::timestamptz, $4::timestamptz, $5::timestamptz, $6,"
     " $7, $8)"
     " ON CONFLICT DO NOTHING RETURNING run_id"},
    {"report_insert_report",
     "INSERT INTO executive_reports (report_id, run_id, generated_at)"
     " VALUES ($1, $2, $3::timestamptz)"},
    /* $1 now in epoch seconds: the current window of each schedule. */
    {"report_due_schedules",
     "SELECT s.schedule_id, s.interval_minutes, s.cadence,"
     " s.recovery_slo_minutes FROM report_schedules s"
     " WHERE s.enabled AND NOT EXISTS (SELECT 1 FROM report_runs r"
     " WHERE r.schedule_id = s.schedule_id AND r.window_start ="
     " to_timestamp(($1::bigint / (s.interval_minutes * 60))"
     " * (s.interval_minutes * 60)))"
     " ORDER BY s.schedule_id LIMIT $2::int"},
    /* Every count over the whole store, from the projections (migration
     * 0014): counters are base rows + not yet folded deltas, summed in
     * this one statement (one snapshot, so exact). Past-SLO depends on
     * now: open routes minus the open, unflagged ones whose plan's SLO
     * has not passed yet (read_unbreached_count, an index range). */
    {"report_dashboard",
     "SELECT" REPORT_SQL_N(1) "," REPORT_SQL_N(2) "," REPORT_SQL_N(3) ","
     REPORT_SQL_N(4) "," REPORT_SQL_N(5) "," REPORT_SQL_N(6) ","
     REPORT_SQL_N(7) "," REPORT_SQL_N(8) "," REPORT_SQL_N(9) ","
     REPORT_SQL_N(10) "," REPORT_SQL_N(20) "," REPORT_SQL_N(21) ","
     REPORT_SQL_N(20) " - read_unbreached_count($1::timestamptz),"
     REPORT_SQL_N(23) "," REPORT_SQL_N(25) "," REPORT_SQL_N(11)
     " FROM (SELECT counter, n FROM read_counts"
     " WHERE counter < 30 AND bucket = '-infinity'"
     " UNION ALL SELECT counter, n FROM read_count_deltas"
     " WHERE counter < 30) x"},
    /* $1 now, $2 rows. Open pairs with no acknowledgement at all
     * (read_unacked_pairs), past their SLO first, then by severity
     * (critical 1 .. info 3), start, plan and provider: two index scans
     * in read_outstanding. A pair is past its SLO when one of its routes
     * is flagged or started + SLO is before now. The exact total is the
     * dashboard's unacknowledged count (the same pairs). */
    {"report_outstanding",
     "SELECT plan_id, provider, sev,"
     " floor(extract(epoch FROM ($1::timestamptz - started)) / 60)::bigint,"
     " breached, slo FROM read_outstanding($1::timestamptz, $2::int)"
     " ORDER BY breached DESC, sev, started, plan_id, provider"},
    /* $1 now: 24 UTC hours, oldest first, the last holding now, from the
     * hourly counters 30 (acknowledgements) and 31 (failed deliveries). */
    {"report_hourly",
     "SELECT (extract(epoch FROM h) * 1000000)::bigint,"
     " coalesce(sum(x.n) FILTER (WHERE x.counter = 30), 0),"
     " coalesce(sum(x.n) FILTER (WHERE x.counter = 31), 0)"
     " FROM generate_series(" REPORT_SQL_HOUR_FIRST ", " REPORT_SQL_HOUR_LAST
     ", interval '1 hour') AS h"
     " LEFT JOIN (SELECT counter, bucket, n FROM read_counts"
     " WHERE counter IN (30, 31) AND bucket >= " REPORT_SQL_HOUR_FIRST
     " AND bucket <= " REPORT_SQL_HOUR_LAST
     " UNION ALL SELECT counter, bucket, n FROM read_count_deltas"
     " WHERE counter IN (30, 31)) x ON x.bucket = h"
     " GROUP BY h ORDER BY h"},
    /* One statement per filter combination (bit 1 kind, 2 plan_id,
     * 4 provider) so each can use its index: $1 below this id, $2 rows. */
    {"report_list_0", REPORT_SQL_LIST("")},
    {"report_list_1", REPORT_SQL_LIST(" AND e.kind = $4")},
    {"report_list_2", REPORT_SQL_LIST(" AND e.plan_id = $4")},
    {"report_list_3", REPORT_SQL_LIST(" AND e.kind = $4 AND e.plan_id = $5")},
    {"report_list_4", REPORT_SQL_LIST(" AND e.provider = $4")},
    {"report_list_5", REPORT_SQL_LIST(" AND e.kind = $4 AND e.provider = $5")},
    {"report_list_6", REPORT_SQL_LIST(" AND e.plan_id = $4"
                                      " AND e.provider = $5")},
    {"report_list_7", REPORT_SQL_LIST(" AND e.kind = $4 AND e.plan_id = $5"
                                      " AND e.provider = $6")},
    /* The whole stream's total is the evidence counter (9) of the read
     * projections (migration 0014): counting a million rows per page took
     * 146 ms. Filtered totals stay exact counts over their index. */
    {"report_count_0",
     "SELECT coalesce(sum(n), 0) FROM (SELECT n FROM read_counts"
     " WHERE counter = 9 AND bucket = '-infinity' AND provider = ''"
     " UNION ALL SELECT n FROM read_count_deltas WHERE counter = 9) x"},
    {"report_count_1", REPORT_SQL_COUNT(" AND e.kind = $1")},
    {"report_count_2", REPORT_SQL_COUNT(" AND e.plan_id = $1")},
    {"report_count_3", REPORT_SQL_COUNT(" AND e.kind = $1 AND e.plan_id = $2")},
    {"report_count_4", REPORT_SQL_COUNT(" AND e.provider = $1")},
    {"report_count_5", REPORT_SQL_COUNT(" AND e.kind = $1 AND e.provider = $2")},
    {"report_count_6", REPORT_SQL_COUNT(" AND e.plan_id = $1"
                                        " AND e.provider = $2")},
    {"report_count_7", REPORT_SQL_COUNT(" AND e.kind = $1 AND e.plan_id = $2"
                                        " AND e.provider = $3")},
    /* $1 plan, $2 after this id, $3 rows. Retry plans keep only the
     * decisions that name the plan. */
    {"report_trace",
     REPORT_SQL_EVENT_COLS
     " CASE WHEN e.kind = '" CV_KIND_RETRY_PLAN "'"
     " AND jsonb_typeof(e.record->'retry_decisions') = 'array'"
     " THEN jsonb_set(e.record, '{retry_decisions}',"
     " (SELECT coalesce(jsonb_agg(d.value ORDER BY d.ordinality),"
     " '[]'::jsonb) FROM jsonb_array_elements(e.record->'retry_decisions')"
     " WITH ORDINALITY AS d WHERE d.value->>'plan_id' = $1))::text"
     " ELSE e.record::text END, e.principal"
     " FROM evidence_events e WHERE e.id > $2::bigint AND e.id IN ("
     " SELECT id FROM evidence_events WHERE plan_id = $1 AND kind IN ('"
     CV_KIND_PLAN "', '" CV_KIND_DELIVERY "', '" CV_KIND_ACK "')"
     " UNION ALL SELECT ev.id FROM retry_decisions d JOIN evidence_events ev"
     " ON ev.kind = '" CV_KIND_RETRY_PLAN "'"
     " AND ev.record_id = d.retry_plan_id WHERE d.plan_id = $1"
     /* Runs whose report counted the plan: made after it, while one of
      * its pairs was open (its latest acknowledgement then was not
      * resolved or dismissed), or with its failed delivery or its
      * acknowledgement inside the run's window. */
     " UNION ALL SELECT ev.id FROM report_runs rr"
     " JOIN evidence_events ev ON ev.kind = '" CV_KIND_REPORT_RUN "'"
     " AND ev.record_id = rr.run_id"
     " WHERE rr.generated_at >= (SELECT generated_at FROM escalation_plans"
     " WHERE plan_id = $1) AND (EXISTS (SELECT 1 FROM plan_routes r"
     " WHERE r.plan_id = $1 AND r.first_of_pair AND coalesce((SELECT"
     " a.acknowledgement_state FROM acknowledgements a"
     " WHERE a.plan_id = $1 AND a.provider = r.provider"
     " AND a.acknowledged_at <= rr.generated_at ORDER BY a.seq DESC"
     " LIMIT 1), 'open') NOT IN ('resolved', 'dismissed'))"
     " OR EXISTS (SELECT 1 FROM delivery_attempts d WHERE d.plan_id = $1"
     " AND NOT d.success AND d.created_at >= rr.window_start"
     " AND d.created_at < rr.window_end)"
     " OR EXISTS (SELECT 1 FROM acknowledgements a WHERE a.plan_id = $1"
     " AND a.acknowledged_at >= rr.window_start"
     " AND a.acknowledged_at < rr.window_end)))"
     " ORDER BY e.id LIMIT $3::int"},
};
// clang-format on
const size_t report_sql_statement_count =
    sizeof(report_sql_statements) / sizeof(report_sql_statements[0]);

/* A bigint column; 0 for NULL. */
static int64_t
report_sql_i64(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return 0;
    return (int64_t)strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* A text column as a malloc'd string (NULL for SQL NULL). */
static char *
report_sql_text(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL
                                      : strdup(PQgetvalue(res, row, col));
}

int
report_sql_upsert_schedule(cv_db *db, const report_schedule *s, const char *now,
                           cv_error *err)
{
    char interval[24], slo[24];
    const char *params[7] = {s->schedule_id,
                             interval,
                             s->cadence,
                             s->enabled ? "true" : "false",
                             slo,
                             s->generated_by,
                             now};

    snprintf(interval, sizeof(interval), "%" PRId64, s->interval_minutes);
    snprintf(slo, sizeof(slo), "%" PRId64, s->recovery_slo_minutes);
    return cv_db_run(db, "report_upsert_schedule", 7, params, err);
}

int
report_sql_schedule_state(cv_db *db, const char *schedule_id, bool *found,
                          bool *enabled, cv_error *err)
{
    const char *params[1] = {schedule_id};
    PGresult *res;

    *found = *enabled = false;
    if ((res = cv_db_exec(db, "report_schedule_state", 1, params, err)) == NULL)
        return err->code;
    if (PQntuples(res) == 1) {
        *found = true;
        *enabled = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    }
    PQclear(res);
    return 0;
}

int
report_sql_schedule_counts(cv_db *db, const char *generated_by, int64_t *total,
                           int64_t *mine, cv_error *err)
{
    const char *params[1] = {generated_by};
    PGresult *res;

    if ((res = cv_db_exec(db, "report_schedule_counts", 1, params, err)) ==
        NULL)
        return err->code;
    *total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    *mine = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    return 0;
}

int
report_sql_schedule_guard(cv_db *db, cv_error *err)
{
    return cv_db_run(db, "report_schedule_guard", 0, NULL, err);
}

int
report_sql_schedule_change(cv_db *db, const report_schedule *s,
                           const char *actor, const char *request_id,
                           const char *now, cv_error *err)
{
    json_t *rec =
        json_pack("{s:s, s:s, s:b, s:s, s:s}", "schedule_id", s->schedule_id,
                  "cadence", s->cadence, "enabled", (int)s->enabled,
                  "changed_by", actor, "changed_at", now);
    json_t *material = NULL;
    char id[CV_ID_MAX];
    char *text = NULL;
    int rv;

    if (rec == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    /* One event per change: the request (or the time) tells two changes
     * of one schedule apart. */
    material = json_pack("{s:s, s:b, s:s, s:s}", "schedule_id", s->schedule_id,
                         "enabled", (int)s->enabled, "changed_at", now,
                         "request_id", request_id != NULL ? request_id : "");
    if (material == NULL ||
        cv_record_id("schchg-", material, id, sizeof(id)) != 0 ||
        json_object_set_new(rec, "change_id", json_string(id)) != 0 ||
        (text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
        rv = cv_error_set(err, CV_INTERNAL, "out of memory");
    } else {
        cv_evidence_event ev = {
            .kind = CV_KIND_SCHEDULE_CHANGE,
            .record_id = id,
            .actor = actor,
            .request_id = request_id,
            .created_at = now,
            .record_json = text,
        };

        rv = cv_evidence_append(db, &ev, err);
    }
    free(text);
    json_decref(material);
    json_decref(rec);
    return rv;
}

int
report_sql_find_run(cv_db *db, const char *schedule_id,
                    const char *window_start, char **record, cv_error *err)
{
    const char *params[2] = {schedule_id, window_start};
    PGresult *res;

    *record = NULL;
    if ((res = cv_db_exec(db, "report_find_run", 2, params, err)) == NULL)
        return err->code;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return cv_error_set(err, CV_NOT_FOUND, "no run for this window yet");
    }
    *record = report_sql_text(res, 0, 0);
    PQclear(res);
    return *record != NULL ? 0
                           : cv_error_set(err, CV_INTERNAL, "out of memory");
}

int
report_sql_latest_run(cv_db *db, char **record, cv_error *err)
{
    PGresult *res;

    *record = NULL;
    if ((res = cv_db_exec(db, "report_latest_run", 0, NULL, err)) == NULL)
        return err->code;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return cv_error_set(err, CV_NOT_FOUND,
                            "no executive report yet: POST "
                            "recovery-executive-report/schedule-run first, or "
                            "pass recovery_slo_minutes or generated_by to "
                            "compute one now");
    }
    *record = report_sql_text(res, 0, 0);
    PQclear(res);
    return *record != NULL ? 0
                           : cv_error_set(err, CV_INTERNAL, "out of memory");
}

int
report_sql_runs(cv_db *db, const char *schedule_id, int64_t before_seq,
                int64_t limit, report_run_row **rows, size_t *n, cv_error *err)
{
    char before[24], lim[24];
    const char *params[3] = {before, lim, schedule_id};
    PGresult *res;
    int count;

    *rows = NULL;
    *n = 0;
    snprintf(before, sizeof(before), "%" PRId64, before_seq);
    snprintf(lim, sizeof(lim), "%" PRId64, limit);
    if ((res = cv_db_exec(
             db, schedule_id != NULL ? "report_runs_1" : "report_runs_0",
             schedule_id != NULL ? 3 : 2, params, err)) == NULL)
        return err->code;
    if ((count = PQntuples(res)) > 0 &&
        (*rows = calloc((size_t)count, sizeof(**rows))) == NULL) {
        PQclear(res);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    for (int i = 0; i < count; i++) {
        (*rows)[i].seq = report_sql_i64(res, i, 0);
        if (((*rows)[i].record = report_sql_text(res, i, 1)) == NULL) {
            *n = (size_t)i;
            PQclear(res);
            return cv_error_set(err, CV_INTERNAL, "out of memory");
        }
    }
    *n = (size_t)count;
    PQclear(res);
    return 0;
}

void
report_sql_free_runs(report_run_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(rows[i].record);
    free(rows);
}

int
report_sql_try_lock(cv_db *db, const char *schedule_id, bool *got,
                    cv_error *err)
{
    const char *params[1] = {schedule_id};
    PGresult *res;

    *got = false;
    if ((res = cv_db_exec(db, "report_try_lock", 1, params, err)) == NULL)
        return err->code;
    *got = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return 0;
}

int
report_sql_counts(cv_db *db, const char *now, int64_t slo_minutes,
                  const char *window_start, const char *window_end,
                  report_counts *out, cv_error *err)
{
    char slo[24];
    const char *params[4] = {now, slo, window_start, window_end};
    PGresult *res;

    memset(out, 0, sizeof(*out));
    snprintf(slo, sizeof(slo), "%" PRId64, slo_minutes);
    if ((res = cv_db_exec(db, "report_counts", 4, params, err)) == NULL)
        return err->code;
    if (PQntuples(res) != 1 || PQnfields(res) != 12) {
        PQclear(res);
        cv_error_set(err, CV_INTERNAL, "internal storage error");
        cv_error_cause(err, "report_counts: no row");
        return CV_INTERNAL;
    }
    out->escalation_count = report_sql_i64(res, 0, 0);
    out->critical_escalation_count = report_sql_i64(res, 0, 1);
    out->slo_breached_count = report_sql_i64(res, 0, 2);
    out->open_recovery_count = report_sql_i64(res, 0, 3);
    out->failed_execution_count = report_sql_i64(res, 0, 4);
    out->unacknowledged_count = report_sql_i64(res, 0, 5);
    out->failed_delivery_count = report_sql_i64(res, 0, 6);
    out->acknowledgement_count = report_sql_i64(res, 0, 7);
    out->retryable_count = report_sql_i64(res, 0, 8);
    out->execution_count = report_sql_i64(res, 0, 9);
    if (!PQgetisnull(res, 0, 10))
        snprintf(out->recovery_report_id, sizeof(out->recovery_report_id), "%s",
                 PQgetvalue(res, 0, 10));
    if (!PQgetisnull(res, 0, 11))
        snprintf(out->escalation_plan_id, sizeof(out->escalation_plan_id), "%s",
                 PQgetvalue(res, 0, 11));
    PQclear(res);
    return 0;
}

/* The AckState of a stored state name; 0 when unknown or NULL. */
static int
report_sql_ack_state(const PGresult *res, int row, int col)
{
    const char *name;

    if (PQgetisnull(res, row, col))
        return 0;
    name = PQgetvalue(res, row, col);
    for (unsigned i = 0; i < cv__ack_state__descriptor.n_values; i++) {
        int v = cv__ack_state__descriptor.values[i].value;
        const char *json = cv_enum_json_name(&cv__ack_state__descriptor, v);

        if (v != 0 && json != NULL && strcmp(json, name) == 0)
            return v;
    }
    return 0;
}

int
report_sql_providers(cv_db *db, const char *now, int64_t slo_minutes,
                     const char *window_start, const char *window_end,
                     report_provider_row **rows, size_t *n, cv_error *err)
{
    char slo[24], limit[24];
    const char *params[5] = {now, slo, window_start, window_end, limit};
    PGresult *res;
    int count;

    *rows = NULL;
    *n = 0;
    snprintf(slo, sizeof(slo), "%" PRId64, slo_minutes);
    snprintf(limit, sizeof(limit), "%d", REPORT_PROVIDER_ROWS_MAX);
    if ((res = cv_db_exec(db, "report_providers", 5, params, err)) == NULL)
        return err->code;
    if ((count = PQntuples(res)) == 0) {
        PQclear(res);
        return 0;
    }
    if ((*rows = calloc((size_t)count, sizeof(**rows))) == NULL) {
        PQclear(res);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    for (int i = 0; i < count; i++) {
        report_provider_row *r = &(*rows)[i];

        snprintf(r->provider, sizeof(r->provider), "%s", PQgetvalue(res, i, 0));
        r->escalation_count = report_sql_i64(res, i, 1);
        r->open_recovery_count = report_sql_i64(res, i, 2);
        r->critical_escalation_count = report_sql_i64(res, i, 3);
        r->slo_breached_count = report_sql_i64(res, i, 4);
        r->unacknowledged_count = report_sql_i64(res, i, 5);
        r->failed_delivery_count = report_sql_i64(res, i, 6);
        r->acknowledgement_count = report_sql_i64(res, i, 7);
        r->latest_state = report_sql_ack_state(res, i, 8);
        r->execution_count = report_sql_i64(res, i, 9);
        r->execution_delivered_count = report_sql_i64(res, i, 10);
        r->execution_failed_count = r->failed_delivery_count;
        r->recovery_closure_count = report_sql_i64(res, i, 11);
        if (!PQgetisnull(res, i, 12))
            cv_time_format(report_sql_i64(res, i, 12), r->latest_execution_at);
        if (!PQgetisnull(res, i, 13))
            cv_time_format(report_sql_i64(res, i, 13), r->latest_closure_at);
    }
    *n = (size_t)count;
    PQclear(res);
    return 0;
}

int
report_sql_store_run(cv_db *db, const Cv__ScheduleRun *run, const char *record,
                     const char *request_id, bool *inserted, cv_error *err)
{
    const Cv__ExecutiveReport *rep = run->executive_report;
    const char *alert =
        cv_enum_json_name(&cv__alert_level__descriptor, run->alert_level);
    const char *params[8] = {run->run_id,
                             run->schedule->schedule_id,
                             run->schedule->window_start,
                             run->schedule->window_end,
                             run->generated_at,
                             run->generated_by,
                             alert,
                             request_id};
    const char *rparams[3] = {rep->executive_report_id, run->run_id,
                              rep->generated_at};
    cv_evidence_event ev = {
        .kind = CV_KIND_REPORT_RUN,
        .record_id = run->run_id,
        .plan_id = NULL,
        .provider = NULL,
        .actor = run->generated_by,
        .request_id = request_id,
        .created_at = run->generated_at,
        .record_json = record,
    };
    PGresult *res;
    int rv;

    *inserted = false;
    if ((res = cv_db_exec(db, "report_insert_run", 8, params, err)) == NULL)
        return err->code;
    *inserted = PQntuples(res) == 1;
    PQclear(res);
    if (!*inserted)
        return 0;
    if ((rv = cv_db_run(db, "report_insert_report", 3, rparams, err)) != 0 ||
        (rv = cv_evidence_append(db, &ev, err)) != 0)
        return rv;
    return 0;
}

int
report_sql_due_schedules(cv_db *db, int64_t now_s, size_t max,
                         report_schedule **out, size_t *n, cv_error *err)
{
    char now[24], limit[24];
    const char *params[2] = {now, limit};
    PGresult *res;
    int count;

    *out = NULL;
    *n = 0;
    snprintf(now, sizeof(now), "%" PRId64, now_s);
    snprintf(limit, sizeof(limit), "%zu", max);
    if ((res = cv_db_exec(db, "report_due_schedules", 2, params, err)) == NULL)
        return err->code;
    if ((count = PQntuples(res)) == 0) {
        PQclear(res);
        return 0;
    }
    if ((*out = calloc((size_t)count, sizeof(**out))) == NULL) {
        PQclear(res);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    for (int i = 0; i < count; i++) {
        report_schedule *s = &(*out)[i];

        snprintf(s->schedule_id, sizeof(s->schedule_id), "%s",
                 PQgetvalue(res, i, 0));
        s->interval_minutes = report_sql_i64(res, i, 1);
        snprintf(s->cadence, sizeof(s->cadence), "%s", PQgetvalue(res, i, 2));
        s->recovery_slo_minutes = report_sql_i64(res, i, 3);
        s->enabled = true;
        s->generated_by = strdup("scheduler");
        *n = (size_t)i + 1;
        if (s->generated_by == NULL) {
            PQclear(res);
            return cv_error_set(err, CV_INTERNAL, "out of memory");
        }
    }
    PQclear(res);
    return 0;
}

/* The dashboard's outstanding acknowledgements: count and first rows
 * (after the counters: the count is theirs). */
static int
report_sql_outstanding(cv_db *db, const char *now, Cv__Dashboard *d,
                       cv_error *err)
{
    char rows[24];
    const char *params[2] = {now, rows};
    PGresult *res;
    int n;

    snprintf(rows, sizeof(rows), "%d", REPORT_OUTSTANDING_MAX);
    if ((res = cv_db_exec(db, "report_outstanding", 2, params, err)) == NULL)
        return err->code;
    n = PQntuples(res);
    /* The same pairs as the unacknowledged count, in the same snapshot. */
    CV_SET(d, outstanding_acknowledgement_count, d->unacknowledged_count);
    if (n > 0 && (d->outstanding_acknowledgements =
                      calloc((size_t)n, sizeof(void *))) == NULL) {
        PQclear(res);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        Cv__OutstandingAcknowledgement *o = malloc(sizeof(*o));

        if (o == NULL) {
            PQclear(res);
            return cv_error_set(err, CV_INTERNAL, "out of memory");
        }
        cv__outstanding_acknowledgement__init(o);
        d->outstanding_acknowledgements[d->n_outstanding_acknowledgements++] =
            o;
        o->plan_id = report_sql_text(res, i, 0);
        o->provider = report_sql_text(res, i, 1);
        CV_SET(o, severity, (Cv__Severity)report_sql_i64(res, i, 2));
        CV_SET(o, age_minutes, report_sql_i64(res, i, 3));
        CV_SET(o, slo_breached, strcmp(PQgetvalue(res, i, 4), "t") == 0);
        CV_SET(o, recovery_slo_minutes, report_sql_i64(res, i, 5));
        if (o->plan_id == NULL || o->provider == NULL) {
            PQclear(res);
            return cv_error_set(err, CV_INTERNAL, "out of memory");
        }
    }
    PQclear(res);
    return 0;
}

/* The dashboard's chart: REPORT_HOURS buckets of activity. */
static int
report_sql_hourly(cv_db *db, const char *now, Cv__Dashboard *d, cv_error *err)
{
    const char *params[1] = {now};
    PGresult *res;
    int n;

    if ((res = cv_db_exec(db, "report_hourly", 1, params, err)) == NULL)
        return err->code;
    n = PQntuples(res);
    if (n != REPORT_HOURS) {
        PQclear(res);
        cv_error_set(err, CV_INTERNAL, "internal storage error");
        cv_error_cause(err, "report_hourly: wrong number of hours");
        return CV_INTERNAL;
    }
    if ((d->hourly_activity = calloc((size_t)n, sizeof(void *))) == NULL) {
        PQclear(res);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        Cv__DashboardHour *h = malloc(sizeof(*h));
        char when[CV_TIME_MAX];

        if (h == NULL) {
            PQclear(res);
            return cv_error_set(err, CV_INTERNAL, "out of memory");
        }
        cv__dashboard_hour__init(h);
        d->hourly_activity[d->n_hourly_activity++] = h;
        cv_time_format(report_sql_i64(res, i, 0), when);
        if ((h->hour_start = strdup(when)) == NULL) {
            PQclear(res);
            return cv_error_set(err, CV_INTERNAL, "out of memory");
        }
        CV_SET(h, acknowledgement_count, report_sql_i64(res, i, 1));
        CV_SET(h, failed_delivery_count, report_sql_i64(res, i, 2));
    }
    PQclear(res);
    return 0;
}

int
report_sql_dashboard(cv_db *db, const char *now, Cv__Dashboard *d,
                     cv_error *err)
{
    const char *params[1] = {now};
    PGresult *res;

    if ((res = cv_db_exec(db, "report_dashboard", 1, params, err)) == NULL)
        return err->code;
    if (PQntuples(res) != 1 || PQnfields(res) != 16) {
        PQclear(res);
        cv_error_set(err, CV_INTERNAL, "internal storage error");
        cv_error_cause(err, "report_dashboard: no row");
        return CV_INTERNAL;
    }
    CV_SET(d, acknowledgement_audit_delivery_recovery_escalation_plan_count,
           report_sql_i64(res, 0, 0));
    CV_SET(d, acknowledgement_audit_delivery_recovery_escalation_ack_count,
           report_sql_i64(res, 0, 1));
    CV_SET(d,
           acknowledgement_audit_delivery_recovery_escalation_retry_plan_count,
           report_sql_i64(res, 0, 2));
    CV_SET(d,
           acknowledgement_audit_delivery_recovery_escalation_retryable_count,
           report_sql_i64(res, 0, 3));
    CV_SET(
        d,
        acknowledgement_audit_delivery_recovery_executive_report_schedule_run_count,
        report_sql_i64(res, 0, 4));
    CV_SET(d, acknowledgement_audit_delivery_recovery_executive_report_count,
           report_sql_i64(res, 0, 5));
    CV_SET(d, delivery_attempt_count, report_sql_i64(res, 0, 6));
    CV_SET(d, failed_delivery_count, report_sql_i64(res, 0, 7));
    CV_SET(d, evidence_event_count, report_sql_i64(res, 0, 8));
    CV_SET(d, report_schedule_count, report_sql_i64(res, 0, 9));
    CV_SET(d, escalation_count, report_sql_i64(res, 0, 10));
    CV_SET(d, critical_escalation_count, report_sql_i64(res, 0, 11));
    CV_SET(d, slo_breached_count, report_sql_i64(res, 0, 12));
    CV_SET(d, open_recovery_count, report_sql_i64(res, 0, 13));
    CV_SET(d, unacknowledged_count, report_sql_i64(res, 0, 14));
    CV_SET(d, acknowledgement_audit_delivery_recovery_escalation_route_count,
           report_sql_i64(res, 0, 15));
    PQclear(res);
    if (report_sql_outstanding(db, now, d, err) != 0)
        return err->code;
    return report_sql_hourly(db, now, d, err);
}

void
report_sql_free_events(Cv__EvidenceEvent **items, size_t n)
{
    if (items == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        if (items[i] != NULL)
            protobuf_c_message_free_unpacked(&items[i]->base, NULL);
    free(items);
}

/* One evidence event from a row of REPORT_SQL_EVENT_COLS + record. */
static Cv__EvidenceEvent *
report_sql_event(const PGresult *res, int row)
{
    Cv__EvidenceEvent *e = malloc(sizeof(*e));
    Cv__RawJson *raw;
    char when[CV_TIME_MAX];
    size_t len;

    if (e == NULL)
        return NULL;
    cv__evidence_event__init(e);
    CV_SET(e, position, report_sql_i64(res, row, 0));
    e->kind = report_sql_text(res, row, 1);
    e->record_id = report_sql_text(res, row, 2);
    e->plan_id = report_sql_text(res, row, 3);
    e->provider = report_sql_text(res, row, 4);
    e->actor = report_sql_text(res, row, 5);
    e->principal = report_sql_text(res, row, 9);
    e->request_id = report_sql_text(res, row, 6);
    cv_time_format(report_sql_i64(res, row, 7), when);
    e->created_at = strdup(when);
    if ((raw = malloc(sizeof(*raw))) == NULL) {
        protobuf_c_message_free_unpacked(&e->base, NULL);
        return NULL;
    }
    cv__raw_json__init(raw);
    e->record = raw;
    /* A page must fit in one RPC reply: a huge record stays in the store
     * and the event says so (its record id names it). */
    len = (size_t)PQgetlength(res, row, 8);
    if (len > REPORT_SQL_RECORD_INLINE_MAX) {
        char stub[128];

        snprintf(stub, sizeof(stub),
                 "{\"record_omitted\":true,\"record_bytes\":%zu}", len);
        raw->json = strdup(stub);
    } else {
        raw->json = report_sql_text(res, row, 8);
    }
    if (e->kind == NULL || e->record_id == NULL || e->created_at == NULL ||
        raw->json == NULL) {
        protobuf_c_message_free_unpacked(&e->base, NULL);
        return NULL;
    }
    return e;
}

/* Turns every row of an event query into a malloc'd array of events. */
static int
report_sql_events(PGresult *res, Cv__EvidenceEvent ***items, size_t *n,
                  cv_error *err)
{
    int count = PQntuples(res);

    *items = NULL;
    *n = 0;
    if (count == 0)
        return 0;
    if ((*items = calloc((size_t)count, sizeof(**items))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    for (int i = 0; i < count; i++) {
        if (((*items)[i] = report_sql_event(res, i)) == NULL) {
            report_sql_free_events(*items, (size_t)i);
            *items = NULL;
            return cv_error_set(err, CV_INTERNAL, "out of memory");
        }
    }
    *n = (size_t)count;
    return 0;
}

/* Appends the filter's values to params (from *nparams on) and returns
 * the statement variant that takes them (bit 1 kind, 2 plan_id, 4
 * provider: report_list_N, report_count_N). */
static int
report_sql_filter_params(const report_list_filter *f, const char **params,
                         int *nparams)
{
    int mask = 0;

    if (f->kind != NULL) {
        mask |= 1;
        params[(*nparams)++] = f->kind;
    }
    if (f->plan_id != NULL) {
        mask |= 2;
        params[(*nparams)++] = f->plan_id;
    }
    if (f->provider != NULL) {
        mask |= 4;
        params[(*nparams)++] = f->provider;
    }
    return mask;
}

int
report_sql_list(cv_db *db, const report_list_filter *f,
                Cv__EvidenceEvent ***items, size_t *n, cv_error *err)
{
    char name[32], before[24], limit[24], offset[24];
    const char *params[6] = {before, limit, offset};
    int nparams = 3, mask, rv;
    PGresult *res;

    *items = NULL;
    *n = 0;
    snprintf(before, sizeof(before), "%" PRId64, f->after_id);
    snprintf(limit, sizeof(limit), "%" PRId64, f->limit + 1);
    snprintf(offset, sizeof(offset), "%" PRId64, f->offset);
    mask = report_sql_filter_params(f, params, &nparams);
    snprintf(name, sizeof(name), "report_list_%d", mask);
    if ((res = cv_db_exec(db, name, nparams, params, err)) == NULL)
        return err->code;
    rv = report_sql_events(res, items, n, err);
    PQclear(res);
    return rv;
}

int
report_sql_count(cv_db *db, const report_list_filter *f, int64_t *total,
                 cv_error *err)
{
    char name[32];
    const char *params[3];
    int nparams = 0, mask;
    PGresult *res;

    *total = 0;
    mask = report_sql_filter_params(f, params, &nparams);
    snprintf(name, sizeof(name), "report_count_%d", mask);
    if ((res = cv_db_exec(db, name, nparams, nparams > 0 ? params : NULL,
                          err)) == NULL)
        return err->code;
    *total = report_sql_i64(res, 0, 0);
    PQclear(res);
    return 0;
}

int
report_sql_trace(cv_db *db, const char *plan_id, int64_t after_id,
                 int64_t limit, Cv__EvidenceEvent ***items, size_t *n,
                 cv_error *err)
{
    char after[24], lim[24];
    const char *params[3] = {plan_id, after, lim};
    PGresult *res;
    int rv;

    *items = NULL;
    *n = 0;
    snprintf(after, sizeof(after), "%" PRId64, after_id);
    snprintf(lim, sizeof(lim), "%" PRId64, limit + 1);
    if ((res = cv_db_exec(db, "report_trace", 3, params, err)) == NULL)
        return err->code;
    rv = report_sql_events(res, items, n, err);
    PQclear(res);
    return rv;
}
