/*
 * dashboard_mix_test.c -- every dashboard counter against SQL over the
 * whole store, after a randomised mixed workload with concurrent writers.
 *
 * The real stack (three services and the gateway) runs; DM_THREADS
 * writers each make DM_OPS random calls over RPC: plans of 1-3 routes
 * (random providers from a small set, so a plan may route one provider
 * twice; random severity, closure state, age and SLO flag),
 * acknowledgements in any of the six states, delivery attempts that
 * succeed or fail, retry plans for one plan or the whole store, schedule
 * runs (new and repeated schedules), and requests that must fail (unknown
 * plan, unrouted provider). Then GET /dashboard through the gateway, and:
 *  - every counter equals a SQL count over the whole store written
 *    independently of the dashboard's own SQL: the latest acknowledgement
 *    of a pair is taken from the acknowledgements themselves (not the
 *    ack_current projection), a route's plan time, SLO and "first route
 *    of its pair" from the plan and the routes (not the copies on
 *    plan_routes), "now" being the dashboard's generated_at;
 *  - the counters this workload moves grew by exactly what its successful
 *    calls say they stored (the client's own tally);
 *  - the outstanding list (its 50 rows, in order) and the 24-hour chart
 *    equal SQL over acknowledgements, plans and routes (DM_OUTSTANDING_SQL,
 *    DM_HOURLY_SQL), and read_projections_diff() (migration 0014) finds
 *    no difference between the projections and the tables;
 *  - the schedule-run report's counts (report_sql_counts) and provider
 *    rows (report_sql_providers), for windows of 60, 90, 1440 and 10080
 *    minutes and SLOs of 30 and 240 minutes, equal SQL over the tables in
 *    the same snapshot (DM_REPORT_COUNTS_SQL, DM_REPORT_PROVIDERS_SQL);
 *  - after read_projections_rebuild() (what the migration runs to backfill
 *    a store that has data) every figure is the same again.
 * A counter added to the dashboard must get its row in dm_counters below
 * (the test fails when the dashboard has an integer counter it does not
 * check). The seed is printed; CAVRA_TEST_SEED=<n> repeats a run.
 *
 * Needs CAVRA_DATABASE_URL (scripts/test.sh). Run: ctest -R
 * integration.dashboard_mix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ack.pb-c.h"
#include "cv_db.h"
#include "cv_rpc.h"
#include "cv_test_api.h"
#include "cv_time.h"
#include "report.pb-c.h"
#include "report_plan.h"
#include "report_sql.h"
#include "retry.pb-c.h"

#define DM_DASHBOARD "/runtime/go-pilot/rollback-drill-notifications/dashboard"
#define DM_THREADS   6
#define DM_OPS       60
#define DM_PROVIDERS 4

static cv_test_stack dm_stack;
static cv_rpc_client *dm_ack, *dm_retry, *dm_report;
static char dm_tag[20];
static unsigned int dm_seed;

/* ---- the independent SQL ------------------------------------------------
 * One statement, $1 = the dashboard's generated_at. */
#define DM_OPEN_SQL                                                            \
    "WITH latest AS (SELECT DISTINCT ON (plan_id, provider) plan_id,"          \
    " provider, acknowledgement_state AS state FROM acknowledgements"          \
    " ORDER BY plan_id, provider, seq DESC),"                                  \
    " routes AS (SELECT r.plan_id, r.provider, r.severity, r.closure_state,"   \
    " r.age_minutes, r.slo_breached, p.generated_at, p.recovery_slo_minutes,"  \
    " r.position = min(r.position) OVER (PARTITION BY r.plan_id, r.provider)"  \
    " AS first FROM plan_routes r JOIN escalation_plans p"                     \
    " ON p.plan_id = r.plan_id),"                                              \
    " open AS (SELECT o.*, l.state FROM routes o LEFT JOIN latest l"           \
    " ON l.plan_id = o.plan_id AND l.provider = o.provider"                    \
    " WHERE l.state IS NULL OR l.state NOT IN ('resolved', 'dismissed'))"      \
    " SELECT count(*), count(*) FILTER (WHERE severity = 'critical'),"         \
    " count(*) FILTER (WHERE slo_breached OR age_minutes * 60 +"               \
    " extract(epoch FROM ($1::timestamptz - generated_at)) >"                  \
    " recovery_slo_minutes * 60),"                                             \
    " count(*) FILTER (WHERE closure_state NOT IN ('resolved', 'mitigated'))," \
    " count(*) FILTER (WHERE state IS NULL AND first),"                        \
    " (SELECT count(*) FROM escalation_plans),"                                \
    " (SELECT count(*) FROM acknowledgements),"                                \
    " (SELECT count(*) FROM retry_plans),"                                     \
    " (SELECT coalesce(sum(retryable_count), 0) FROM retry_plans),"            \
    " (SELECT count(*) FROM report_runs),"                                     \
    " (SELECT count(*) FROM executive_reports),"                               \
    " (SELECT count(*) FROM delivery_attempts),"                               \
    " (SELECT count(*) FROM delivery_attempts WHERE NOT success),"             \
    " (SELECT count(*) FROM evidence_events),"                                 \
    " (SELECT count(*) FROM report_schedules),"                                \
    " (SELECT count(*) FROM plan_routes),"                                     \
    " (SELECT count(*) FROM (SELECT DISTINCT plan_id, provider"                \
    " FROM plan_routes r WHERE NOT EXISTS (SELECT 1 FROM acknowledgements a"   \
    " WHERE a.plan_id = r.plan_id AND a.provider = r.provider)) pairs)"        \
    " FROM open"

/* The outstanding list, $1 = the dashboard's generated_at: open pairs
 * with no acknowledgement at all (from the acknowledgements, not
 * ack_current), one line per pair as dm_dashboard formats them. */
#define DM_OUTSTANDING_SQL                                                     \
    "WITH pairs AS (SELECT r.plan_id, r.provider,"                             \
    " min(CASE r.severity WHEN 'critical' THEN 1 WHEN 'warning' THEN 2"        \
    " ELSE 3 END) AS sev,"                                                     \
    " min(p.generated_at - r.age_minutes * interval '1 minute') AS started,"   \
    " bool_or(r.slo_breached OR r.age_minutes * 60 +"                          \
    " extract(epoch FROM ($1::timestamptz - p.generated_at)) >"                \
    " p.recovery_slo_minutes * 60) AS breached,"                               \
    " max(p.recovery_slo_minutes) AS slo"                                      \
    " FROM plan_routes r JOIN escalation_plans p ON p.plan_id = r.plan_id"     \
    " WHERE NOT EXISTS (SELECT 1 FROM acknowledgements a"                      \
    " WHERE a.plan_id = r.plan_id AND a.provider = r.provider)"                \
    " GROUP BY r.plan_id, r.provider)"                                         \
    " SELECT plan_id || '|' || provider || '|' ||"                             \
    " (ARRAY['critical', 'warning', 'info'])[sev] || '|' ||"                   \
    " floor(extract(epoch FROM ($1::timestamptz - started)) / 60)::bigint"     \
    " || '|' || breached || '|' || slo FROM pairs"                             \
    " ORDER BY breached DESC, sev, started, plan_id, provider LIMIT 50"

/* The chart: 24 UTC hours up to the one holding $1, counted by time. */
#define DM_HOURLY_SQL                                                          \
    "SELECT to_char(h AT TIME ZONE 'UTC',"                                     \
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') || '|' ||"                          \
    " (SELECT count(*) FROM acknowledgements WHERE acknowledged_at >= h"       \
    " AND acknowledged_at < h + interval '1 hour') || '|' ||"                  \
    " (SELECT count(*) FROM delivery_attempts WHERE NOT success"               \
    " AND created_at >= h AND created_at < h + interval '1 hour')"             \
    " FROM generate_series(date_trunc('hour', $1::timestamptz"                 \
    " AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '23 hours',"           \
    " date_trunc('hour', $1::timestamptz AT TIME ZONE 'UTC')"                  \
    " AT TIME ZONE 'UTC', interval '1 hour') AS h ORDER BY h"

/* The schedule-run report over the tables: $1 now, $2 SLO minutes, $3/$4
 * the window, $5 provider rows. Open routes as in DM_OPEN_SQL (latest
 * acknowledgement from the acknowledgements, first route of a pair from
 * the routes, plan time from the plan). */
#define DM_REPORT_OPEN_SQL                                                     \
    "WITH latest AS (SELECT DISTINCT ON (plan_id, provider) plan_id,"          \
    " provider, acknowledgement_state AS state, seq FROM acknowledgements"     \
    " ORDER BY plan_id, provider, seq DESC),"                                  \
    " routes AS (SELECT r.plan_id, r.provider, r.severity, r.category,"        \
    " r.closure_state, r.failure_count, r.age_minutes, r.slo_breached,"        \
    " p.generated_at,"                                                         \
    " r.position = min(r.position) OVER (PARTITION BY r.plan_id, r.provider)"  \
    " AS first FROM plan_routes r JOIN escalation_plans p"                     \
    " ON p.plan_id = r.plan_id),"                                              \
    " open_routes AS (SELECT o.*, (o.slo_breached OR o.age_minutes * 60 +"     \
    " extract(epoch FROM ($1::timestamptz - o.generated_at)) >"                \
    " $2::bigint * 60) AS breached, l.state, l.seq FROM routes o"              \
    " LEFT JOIN latest l ON l.plan_id = o.plan_id AND l.provider = o.provider" \
    " WHERE l.state IS NULL OR l.state NOT IN ('resolved', 'dismissed'))"
#define DM_IN_WINDOW(col)                                                      \
    " " col " >= $3::timestamptz AND " col " < $4::timestamptz"
#define DM_UTC(expr)                                                           \
    "coalesce(to_char(" expr " AT TIME ZONE 'UTC',"                            \
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '')"
#define DM_REPORT_COUNTS_SQL                                                   \
    DM_REPORT_OPEN_SQL                                                         \
    " SELECT count(*), count(*) FILTER (WHERE severity = 'critical'),"         \
    " count(*) FILTER (WHERE breached),"                                       \
    " count(*) FILTER (WHERE closure_state NOT IN ('resolved', 'mitigated'))," \
    " coalesce(sum(failure_count)"                                             \
    " FILTER (WHERE category = 'retry-execution'), 0),"                        \
    " count(*) FILTER (WHERE state IS NULL AND first),"                        \
    " (SELECT count(*) FROM delivery_attempts WHERE NOT success "              \
    "AND" DM_IN_WINDOW(                                                        \
        "created_at") "),"                                                     \
                      " (SELECT count(*) FROM acknowledgements "               \
                      "WHERE" DM_IN_WINDOW(                                    \
                          "acknowledged_at") "),"                              \
                                             " coalesce((SELECT "              \
                                             "retryable_count FROM "           \
                                             "retry_plans"                     \
                                             " ORDER BY seq DESC LIMIT 1), "   \
                                             "0),"                             \
                                             " (SELECT count(*) FROM "         \
                                             "delivery_attempts "              \
                                             "WHERE" DM_IN_WINDOW(             \
                                                 "created_at") "),"            \
                                                               " coalesce(("   \
                                                               "SELECT "       \
                                                               "retry_plan_"   \
                                                               "id FROM "      \
                                                               "retry_plans"   \
                                                               " ORDER BY "    \
                                                               "seq DESC "     \
                                                               "LIMIT 1), "    \
                                                               "''),"          \
                                                               " coalesce(("   \
                                                               "SELECT "       \
                                                               "plan_id FROM " \
                                                               "escalation_"   \
                                                               "plans"         \
                                                               " ORDER BY "    \
                                                               "seq DESC "     \
                                                               "LIMIT 1), '')" \
                                                               " FROM "        \
                                                               "open_routes"
#define DM_REPORT_PROVIDERS_SQL                                                                                                                            \
    DM_REPORT_OPEN_SQL                                                                                                                                     \
    ", po AS (SELECT provider, count(*) AS esc, count(*) FILTER (WHERE"                                                                                    \
    " closure_state NOT IN ('resolved', 'mitigated')) AS open_recovery,"                                                                                   \
    " count(*) FILTER (WHERE severity = 'critical') AS critical,"                                                                                          \
    " count(*) FILTER (WHERE breached) AS breached,"                                                                                                       \
    " count(*) FILTER (WHERE state IS NULL AND first) AS unacked"                                                                                          \
    " FROM open_routes GROUP BY provider),"                                                                                                                \
    " pf AS (SELECT provider, count(*) FILTER (WHERE NOT success) AS n,"                                                                                   \
    " count(*) AS runs, count(*) FILTER (WHERE success) AS ok,"                                                                                            \
    " max(created_at) AS latest FROM delivery_attempts WHERE" DM_IN_WINDOW(                                                                                \
        "created_at") " GROUP BY provider),"                                                                                                               \
                      " pa AS (SELECT provider, count(*) AS n, count(*) "                                                                                  \
                      "FILTER (WHERE"                                                                                                                      \
                      " acknowledgement_state IN ('resolved', 'dismissed')) "                                                                              \
                      "AS closed,"                                                                                                                         \
                      " max(acknowledged_at) FILTER (WHERE "                                                                                               \
                      "acknowledgement_state"                                                                                                              \
                      " IN ('resolved', 'dismissed')) AS closed_at FROM "                                                                                  \
                      "acknowledgements WHERE" DM_IN_WINDOW(                                                                                               \
                          "acknowledged_at") " GROUP BY provider),"                                                                                        \
                                             " pl AS (SELECT DISTINCT ON "                                                                                 \
                                             "(provider) provider, state FROM"                                                                             \
                                             " (SELECT provider, "                                                                                         \
                                             "acknowledgement_state AS "                                                                                   \
                                             "state, seq"                                                                                                  \
                                             " FROM acknowledgements "                                                                                     \
                                             "WHERE" DM_IN_WINDOW(                                                                                         \
                                                 "acknowledged_at") " UNION "                                                                              \
                                                                    "ALL "                                                                                 \
                                                                    "SELECT "                                                                              \
                                                                    "provider"                                                                             \
                                                                    ", "                                                                                   \
                                                                    "state, "                                                                              \
                                                                    "seq "                                                                                 \
                                                                    "FROM "                                                                                \
                                                                    "open_"                                                                                \
                                                                    "routes"                                                                               \
                                                                    " WHERE "                                                                              \
                                                                    "first "                                                                               \
                                                                    "AND "                                                                                 \
                                                                    "state "                                                                               \
                                                                    "IS NOT "                                                                              \
                                                                    "NULL) x "                                                                             \
                                                                    "ORDER "                                                                               \
                                                                    "BY "                                                                                  \
                                                                    "provider"                                                                             \
                                                                    ", seq "                                                                               \
                                                                    "DESC),"                                                                               \
                                                                    " names "                                                                              \
                                                                    "AS "                                                                                  \
                                                                    "(SELECT "                                                                             \
                                                                    "provider"                                                                             \
                                                                    " FROM "                                                                               \
                                                                    "po "                                                                                  \
                                                                    "UNION "                                                                               \
                                                                    "SELECT "                                                                              \
                                                                    "provider"                                                                             \
                                                                    " FROM pf"                                                                             \
                                                                    " UNION "                                                                              \
                                                                    "SELECT "                                                                              \
                                                                    "provider"                                                                             \
                                                                    " FROM "                                                                               \
                                                                    "pa)"                                                                                  \
                                                                    " SELECT "                                                                             \
                                                                    "concat_"                                                                              \
                                                                    "ws('|', "                                                                             \
                                                                    "n."                                                                                   \
                                                                    "provider"                                                                             \
                                                                    ", "                                                                                   \
                                                                    "coalesce"                                                                             \
                                                                    "(po.esc,"                                                                             \
                                                                    " 0),"                                                                                 \
                                                                    " coalesc"                                                                             \
                                                                    "e(po."                                                                                \
                                                                    "open_"                                                                                \
                                                                    "recovery"                                                                             \
                                                                    ", 0), "                                                                               \
                                                                    "coalesce"                                                                             \
                                                                    "(po."                                                                                 \
                                                                    "critical"                                                                             \
                                                                    ", 0),"                                                                                \
                                                                    " coalesc"                                                                             \
                                                                    "e(po."                                                                                \
                                                                    "breached"                                                                             \
                                                                    ", 0), "                                                                               \
                                                                    "coalesce"                                                                             \
                                                                    "(po."                                                                                 \
                                                                    "unacked,"                                                                             \
                                                                    " 0), "                                                                                \
                                                                    "coalesce"                                                                             \
                                                                    "(pf.n, "                                                                              \
                                                                    "0),"                                                                                  \
                                                                    " coalesc"                                                                             \
                                                                    "e(pa.n, "                                                                             \
                                                                    "0), "                                                                                 \
                                                                    "coalesce"                                                                             \
                                                                    "(array_"                                                                              \
                                                                    "position"                                                                             \
                                                                    "(ARRAY['"                                                                             \
                                                                    "acknowle"                                                                             \
                                                                    "dged',"                                                                               \
                                                                    " '"                                                                                   \
                                                                    "accepted"                                                                             \
                                                                    "', "                                                                                  \
                                                                    "'deferre"                                                                             \
                                                                    "d', "                                                                                 \
                                                                    "'escalat"                                                                             \
                                                                    "ed', "                                                                                \
                                                                    "'resolve"                                                                             \
                                                                    "d', "                                                                                 \
                                                                    "'dismiss"                                                                             \
                                                                    "ed'],"                                                                                \
                                                                    " pl."                                                                                 \
                                                                    "state), "                                                                             \
                                                                    "0), "                                                                                 \
                                                                    "coalesce"                                                                             \
                                                                    "(pf."                                                                                 \
                                                                    "runs, "                                                                               \
                                                                    "0), "                                                                                 \
                                                                    "coalesce"                                                                             \
                                                                    "(pf.ok, "                                                                             \
                                                                    "0),"                                                                                  \
                                                                    " coalesc"                                                                             \
                                                                    "e(pf.n, "                                                                             \
                                                                    "0), "                                                                                 \
                                                                    "coalesce"                                                                             \
                                                                    "(pa."                                                                                 \
                                                                    "closed, "                                                                             \
                                                                    "0),"                                                                                  \
                                                                    " " DM_UTC(                                                                            \
                                                                        "pf."                                                                              \
                                                                        "late"                                                                             \
                                                                        "st") ","                                                                          \
                                                                              " " DM_UTC(                                                                  \
                                                                                  "pa.closed_at") ")"                                                      \
                                                                                                  " FROM names n LEFT JOIN po ON po.provider = n.provider" \
                                                                                                  " LEFT JOIN pf ON pf.provider = n.provider"              \
                                                                                                  " LEFT JOIN pa ON pa.provider = n.provider"              \
                                                                                                  " LEFT JOIN pl ON pl.provider = n.provider"              \
                                                                                                  " ORDER BY n.provider LIMIT $5::int"

#define DM_LIST_MAX 50
#define DM_HOURS    24
#define DM_LINE_MAX 160

/* The tally a counter is checked against (besides SQL). */
enum dm_tally {
    DM_T_NONE = -1,
    DM_T_PLANS,
    DM_T_ACKS,
    DM_T_RETRY_PLANS,
    DM_T_RETRYABLE,
    DM_T_RUNS,
    DM_T_REPORTS,
    DM_T_DELIVERIES,
    DM_T_FAILED,
    DM_T_SCHEDULES,
    DM_T_COUNT,
};

/* Every integer counter of the dashboard: its JSON name, its column in
 * DM_OPEN_SQL, and the tally its growth must equal. */
static const struct {
    const char *field;
    int column;
    enum dm_tally tally;
} dm_counters[] = {
    {"escalation_count", 0, DM_T_NONE},
    {"critical_escalation_count", 1, DM_T_NONE},
    {"slo_breached_count", 2, DM_T_NONE},
    {"open_recovery_count", 3, DM_T_NONE},
    {"unacknowledged_count", 4, DM_T_NONE},
    {"acknowledgement_audit_delivery_recovery_escalation_plan_count", 5,
     DM_T_PLANS},
    {"acknowledgement_audit_delivery_recovery_escalation_ack_count", 6,
     DM_T_ACKS},
    {"acknowledgement_audit_delivery_recovery_escalation_retry_plan_count", 7,
     DM_T_RETRY_PLANS},
    {"acknowledgement_audit_delivery_recovery_escalation_retryable_count", 8,
     DM_T_RETRYABLE},
    {"acknowledgement_audit_delivery_recovery_executive_report_schedule_run_"
     "count",
     9, DM_T_RUNS},
    {"acknowledgement_audit_delivery_recovery_executive_report_count", 10,
     DM_T_REPORTS},
    {"delivery_attempt_count", 11, DM_T_DELIVERIES},
    {"failed_delivery_count", 12, DM_T_FAILED},
    {"evidence_event_count", 13, DM_T_NONE},
    {"report_schedule_count", 14, DM_T_SCHEDULES},
    {"acknowledgement_audit_delivery_recovery_escalation_route_count", 15,
     DM_T_NONE},
    {"outstanding_acknowledgement_count", 16, DM_T_NONE},
};
#define DM_N_COUNTERS (sizeof(dm_counters) / sizeof(dm_counters[0]))
#define DM_N_COLUMNS  17

/* ---- the workload ------------------------------------------------------ */

typedef struct dm_plan {
    char id[64];
    char providers[3][48];
    int n;
} dm_plan;

typedef struct dm_writer {
    int index;
    unsigned int rng;
    dm_plan plans[DM_OPS];
    int n_plans;
    long long tally[DM_T_COUNT];
    int failures; /* calls that failed although they should not */
    char what[160];
} dm_writer;

static unsigned int
dm_rand(dm_writer *w, unsigned int n)
{
    return (unsigned int)rand_r(&w->rng) % n;
}

static void
dm_provider(char *out, size_t n, unsigned int k)
{
    snprintf(out, n, "dm%s-p%u", dm_tag, k);
}

static void
dm_fail(dm_writer *w, const char *what, int rv)
{
    if (w->failures++ == 0)
        snprintf(w->what, sizeof(w->what), "%s failed with code %d", what, rv);
}

static void
dm_op_plan(dm_writer *w)
{
    static const char *const closures[] = {"open", "resolved", "mitigated",
                                           "investigating"};
    Cv__EscalationRoute routes[3];
    Cv__RecordPlanReply *rep = NULL;
    dm_plan *p = &w->plans[w->n_plans];
    cv_error err;
    int n = 1 + (int)dm_rand(w, 3), rv;

    for (int i = 0; i < n; i++) {
        cv__escalation_route__init(&routes[i]);
        dm_provider(p->providers[i], sizeof(p->providers[i]),
                    dm_rand(w, DM_PROVIDERS));
        routes[i].provider = p->providers[i];
        routes[i].has_severity = 1;
        routes[i].severity = (Cv__Severity)(1 + dm_rand(w, 3));
        routes[i].closure_state = (char *)closures[dm_rand(w, 4)];
        routes[i].has_age_minutes = 1;
        routes[i].age_minutes = dm_rand(w, 2) ? 0 : (int64_t)dm_rand(w, 600);
        routes[i].has_slo_breached = 1;
        routes[i].slo_breached = dm_rand(w, 5) == 0;
        if (dm_rand(w, 3) == 0) {
            routes[i].category = "retry-execution";
            routes[i].has_failure_count = 1;
            routes[i].failure_count = dm_rand(w, 4);
        }
    }
    cv_error_clear(&err);
    rv = cv_test_record_plan_call(dm_ack, "dashboard-mix", routes, (size_t)n,
                                  NULL, &rep, &err);
    if (rv != 0) {
        dm_fail(w, "plan", rv);
        return;
    }
    snprintf(p->id, sizeof(p->id), "%s", rep->plan->plan_id);
    /* The stored plan keeps the providers it routes (maybe reordered). */
    p->n = 0;
    for (size_t i = 0; i < rep->plan->n_escalation_routes && i < 3; i++)
        snprintf(p->providers[p->n++], sizeof(p->providers[0]), "%s",
                 rep->plan->escalation_routes[i]->provider);
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    w->n_plans++;
    w->tally[DM_T_PLANS]++;
}

static void
dm_op_ack(dm_writer *w)
{
    const dm_plan *p = &w->plans[dm_rand(w, (unsigned int)w->n_plans)];
    cv_error err;
    int rv, bad = dm_rand(w, 8);

    cv_error_clear(&err);
    if (bad == 0) {
        /* A provider the plan does not route: refused, nothing stored. */
        char other[64];

        snprintf(other, sizeof(other), "dm%s-none", dm_tag);
        rv = cv_test_ack_call(dm_ack, p->id, other, "dm", 0, NULL, NULL, &err);
        if (rv == 0)
            dm_fail(w, "ack of an unrouted provider (must fail)", 0);
        return;
    }
    rv = cv_test_ack_call(dm_ack, p->id,
                          p->providers[dm_rand(w, (unsigned)p->n)], "dm",
                          (int)(1 + dm_rand(w, 6)), NULL, NULL, &err);
    if (rv != 0)
        dm_fail(w, "ack", rv);
    else
        w->tally[DM_T_ACKS]++;
}

static void
dm_op_delivery(dm_writer *w)
{
    const dm_plan *p = &w->plans[dm_rand(w, (unsigned int)w->n_plans)];
    Cv__RecordDeliveryRequest req = CV__RECORD_DELIVERY_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    cv_error err;
    int success = dm_rand(w, 2), rv;

    req.plan_id = (char *)p->id;
    req.provider = (char *)p->providers[dm_rand(w, (unsigned)p->n)];
    req.has_success = 1;
    req.success = success;
    req.has_status_code = 1;
    req.status_code = success ? 200 : (dm_rand(w, 2) ? 503 : 429);
    cv_error_clear(&err);
    rv = cv_rpc_call(dm_retry, "retry.RecordDelivery", &req.base,
                     &cv__record_delivery_reply__descriptor, &rep, NULL, &err);
    if (rv != 0) {
        dm_fail(w, "delivery", rv);
        return;
    }
    protobuf_c_message_free_unpacked(rep, NULL);
    w->tally[DM_T_DELIVERIES]++;
    w->tally[DM_T_FAILED] += !success;
}

static void
dm_op_retry_plan(dm_writer *w)
{
    Cv__RetryPlanRequest req = CV__RETRY_PLAN_REQUEST__INIT;
    Cv__RetryPolicy pol = CV__RETRY_POLICY__INIT;
    ProtobufCMessage *rep = NULL;
    cv_error err;
    int rv;

    pol.has_allow_immediate_retry = 1;
    pol.allow_immediate_retry = dm_rand(w, 2);
    /* Mostly one plan; sometimes the whole store. */
    if (dm_rand(w, 5) != 0)
        req.plan_id = (char *)w->plans[dm_rand(w, (unsigned int)w->n_plans)].id;
    req.retry_policy = &pol;
    cv_error_clear(&err);
    rv = cv_rpc_call(dm_retry, "retry.PlanRetries", &req.base,
                     &cv__retry_plan_reply__descriptor, &rep, NULL, &err);
    if (rv != 0) {
        dm_fail(w, "retry plan", rv);
        return;
    }
    w->tally[DM_T_RETRY_PLANS]++;
    w->tally[DM_T_RETRYABLE] +=
        ((Cv__RetryPlanReply *)rep)->plan->retryable_count;
    protobuf_c_message_free_unpacked(rep, NULL);
}

static void
dm_op_run(dm_writer *w)
{
    Cv__ScheduleRunRequest req = CV__SCHEDULE_RUN_REQUEST__INIT;
    Cv__ScheduleSpec spec = CV__SCHEDULE_SPEC__INIT;
    ProtobufCMessage *rep = NULL;
    cv_rpc_call_opts opts = {0};
    bool existing = false;
    char sid[64];
    cv_error err;
    unsigned int k = dm_rand(w, 4);
    int rv;

    /* A few schedules per writer: a repeated one returns the stored run
     * of its window (no new run, report or schedule). */
    snprintf(sid, sizeof(sid), "dm-%s-%d-%u", dm_tag, w->index, k);
    spec.schedule_id = sid;
    spec.has_interval_minutes = 1;
    spec.interval_minutes = 10080;
    spec.has_enabled = 1;
    spec.enabled = 0;
    req.schedule = &spec;
    opts.existing = &existing;
    cv_error_clear(&err);
    rv = cv_rpc_call(dm_report, "report.ScheduleRun", &req.base,
                     &cv__schedule_run_reply__descriptor, &rep, &opts, &err);
    if (rv != 0) {
        dm_fail(w, "schedule run", rv);
        return;
    }
    protobuf_c_message_free_unpacked(rep, NULL);
    if (!existing) {
        w->tally[DM_T_RUNS]++;
        w->tally[DM_T_REPORTS]++;
        w->tally[DM_T_SCHEDULES]++;
    }
}

static void *
dm_writer_main(void *arg)
{
    dm_writer *w = arg;

    dm_op_plan(w);
    for (int i = 1; i < DM_OPS && w->failures == 0; i++) {
        unsigned int r = dm_rand(w, 100);

        if (w->n_plans == 0 || r < 25)
            dm_op_plan(w);
        else if (r < 60)
            dm_op_ack(w);
        else if (r < 82)
            dm_op_delivery(w);
        else if (r < 92)
            dm_op_retry_plan(w);
        else
            dm_op_run(w);
    }
    return NULL;
}

/* ---- reading both sides ------------------------------------------------ */

typedef struct dm_reading {
    long long dash[DM_N_COUNTERS];
    long long sql[DM_N_COLUMNS];
    /* The outstanding list and the chart, one line per row, both sides. */
    char dash_list[DM_LIST_MAX][DM_LINE_MAX],
        sql_list[DM_LIST_MAX][DM_LINE_MAX];
    int n_dash_list, n_sql_list;
    char dash_hours[DM_HOURS][DM_LINE_MAX], sql_hours[DM_HOURS][DM_LINE_MAX];
    int n_dash_hours, n_sql_hours;
    char at[64];
} dm_reading;

static void
dm_dashboard(dm_reading *r)
{
    cv_http_response res;
    const char *key;
    json_t *v;
    size_t i;

    cv_test_request_json(&dm_stack, "GET", DM_DASHBOARD, NULL, 200, &res);
    snprintf(r->at, sizeof(r->at), "%s",
             cv_test_json_str(res.json, "generated_at"));
    for (i = 0; i < DM_N_COUNTERS; i++)
        r->dash[i] = cv_test_json_int(res.json, dm_counters[i].field);
    /* Every integer counter must be one this test checks. */
    json_object_foreach(res.json, key, v)
    {
        bool known = false;

        if (!json_is_integer(v))
            continue;
        for (i = 0; i < DM_N_COUNTERS; i++)
            known = known || strcmp(key, dm_counters[i].field) == 0;
        if (!known)
            fail_msg("dashboard counter %s is not checked against SQL: add it "
                     "to dm_counters",
                     key);
    }
    r->n_dash_list = 0;
    json_array_foreach(
        json_object_get(res.json, "outstanding_acknowledgements"), i, v)
    {
        if (r->n_dash_list == DM_LIST_MAX)
            fail_msg("more than %d outstanding rows", DM_LIST_MAX);
        snprintf(
            r->dash_list[r->n_dash_list++], DM_LINE_MAX,
            "%s|%s|%s|%lld|%s|%lld", cv_test_json_str(v, "plan_id"),
            cv_test_json_str(v, "provider"), cv_test_json_str(v, "severity"),
            cv_test_json_int(v, "age_minutes"),
            json_is_true(json_object_get(v, "slo_breached")) ? "true" : "false",
            cv_test_json_int(v, "recovery_slo_minutes"));
    }
    r->n_dash_hours = 0;
    json_array_foreach(json_object_get(res.json, "hourly_activity"), i, v)
    {
        if (r->n_dash_hours == DM_HOURS)
            fail_msg("more than %d hours in the chart", DM_HOURS);
        snprintf(r->dash_hours[r->n_dash_hours++], DM_LINE_MAX, "%s|%lld|%lld",
                 cv_test_json_str(v, "hour_start"),
                 cv_test_json_int(v, "acknowledgement_count"),
                 cv_test_json_int(v, "failed_delivery_count"));
    }
    cv_http_response_free(&res);
}

/* Runs one-column SQL ($1 = at) into lines; returns the row count. */
static int
dm_sql_lines(PGconn *c, const char *sql, const char *at,
             char lines[][DM_LINE_MAX], int max)
{
    const char *params[1] = {at};
    PGresult *res = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
    int n;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) > max)
        fail_msg("list SQL: %s", PQresultErrorMessage(res));
    n = PQntuples(res);
    for (int i = 0; i < n; i++)
        snprintf(lines[i], DM_LINE_MAX, "%s", PQgetvalue(res, i, 0));
    PQclear(res);
    return n;
}

static void
dm_sql(dm_reading *r)
{
    const char *params[1] = {r->at};
    PGconn *c = PQconnectdb(cv_test_database_url());
    PGresult *res;

    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect: %s", PQerrorMessage(c));
    res = PQexecParams(c, DM_OPEN_SQL, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
        PQnfields(res) != DM_N_COLUMNS)
        fail_msg("dashboard SQL: %s", PQresultErrorMessage(res));
    for (int i = 0; i < DM_N_COLUMNS; i++)
        r->sql[i] = strtoll(PQgetvalue(res, 0, i), NULL, 10);
    PQclear(res);
    r->n_sql_list =
        dm_sql_lines(c, DM_OUTSTANDING_SQL, r->at, r->sql_list, DM_LIST_MAX);
    r->n_sql_hours =
        dm_sql_lines(c, DM_HOURLY_SQL, r->at, r->sql_hours, DM_HOURS);
    PQfinish(c);
}

/* The first difference between the dashboard and SQL, or NULL. */
static const char *
dm_difference(const dm_reading *r, char *why, size_t n)
{
    for (size_t i = 0; i < DM_N_COUNTERS; i++)
        if (r->dash[i] != r->sql[dm_counters[i].column]) {
            snprintf(why, n, "%s: dashboard %lld, SQL over the store %lld",
                     dm_counters[i].field, r->dash[i],
                     r->sql[dm_counters[i].column]);
            return why;
        }
    if (r->n_dash_list != r->n_sql_list) {
        snprintf(why, n, "outstanding list: dashboard %d rows, SQL %d",
                 r->n_dash_list, r->n_sql_list);
        return why;
    }
    for (int i = 0; i < r->n_dash_list; i++)
        if (strcmp(r->dash_list[i], r->sql_list[i]) != 0) {
            snprintf(why, n, "outstanding row %d: dashboard %s, SQL %s", i,
                     r->dash_list[i], r->sql_list[i]);
            return why;
        }
    if (r->n_dash_hours != DM_HOURS || r->n_sql_hours != DM_HOURS) {
        snprintf(why, n, "chart: dashboard %d hours, SQL %d", r->n_dash_hours,
                 r->n_sql_hours);
        return why;
    }
    for (int i = 0; i < DM_HOURS; i++)
        if (strcmp(r->dash_hours[i], r->sql_hours[i]) != 0) {
            snprintf(why, n, "chart hour %d: dashboard %s, SQL %s", i,
                     r->dash_hours[i], r->sql_hours[i]);
            return why;
        }
    return NULL;
}

/* As the owner: one statement, so one snapshot. Fails on any row. */
static void
dm_projections_agree(void)
{
    PGconn *c = PQconnectdb(cv_test_database_url());
    PGresult *res;

    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect: %s", PQerrorMessage(c));
    res = PQexec(c, "SELECT count(*), string_agg(what || ' ' || detail, '; ')"
                    " FROM (SELECT * FROM read_projections_diff() LIMIT 5) d");
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("read_projections_diff: %s", PQresultErrorMessage(res));
    if (strcmp(PQgetvalue(res, 0, 0), "0") != 0)
        fail_msg("the projections differ from the tables: %s (seed %u)",
                 PQgetvalue(res, 0, 1), dm_seed);
    PQclear(res);
    PQfinish(c);
}

/* The schedule-run report's counts and provider rows against SQL over
 * the tables, in one REPEATABLE READ snapshot. */
static void
dm_check_reports(void)
{
    static const int64_t intervals[] = {60, 90, 1440, 10080};
    static const int64_t slos[] = {30, 240};
    int64_t now_us = cv_now_us();
    char now[CV_TIME_MAX], limit[16];
    cv_db db;
    cv_error err;
    int checked = 0;

    cv_error_clear(&err);
    cv_time_format(now_us, now);
    snprintf(limit, sizeof(limit), "%d", REPORT_PROVIDER_ROWS_MAX);
    if (cv_db_init(&db, cv_test_database_url(), report_sql_statements,
                   report_sql_statement_count, &err) != 0 ||
        cv_db_ensure(&db, &err) != 0 ||
        cv_db_tx_begin(&db, CV_TX_READ_SNAPSHOT, &err) != 0)
        fail_msg("report statements: %s (%s)", err.msg, err.cause);
    for (size_t i = 0; i < sizeof(intervals) / sizeof(intervals[0]); i++) {
        for (size_t j = 0; j < sizeof(slos) / sizeof(slos[0]); j++) {
            int64_t ws_us, we_us;
            char ws[CV_TIME_MAX], we[CV_TIME_MAX], slo[16];
            const char *params[5] = {now, slo, ws, we, limit};
            report_counts c;
            report_provider_row *rows = NULL;
            size_t n = 0;
            PGresult *res;
            long long got[10], mine[10];

            assert_int_equal(
                report_window(now_us, intervals[i], &ws_us, &we_us), 0);
            cv_time_format(ws_us, ws);
            cv_time_format(we_us, we);
            snprintf(slo, sizeof(slo), "%lld", (long long)slos[j]);
            if (report_sql_counts(&db, now, slos[j], ws, we, &c, &err) != 0 ||
                report_sql_providers(&db, now, slos[j], ws, we, &rows, &n,
                                     &err) != 0)
                fail_msg("report counts: %s (%s)", err.msg, err.cause);
            mine[0] = c.escalation_count;
            mine[1] = c.critical_escalation_count;
            mine[2] = c.slo_breached_count;
            mine[3] = c.open_recovery_count;
            mine[4] = c.failed_execution_count;
            mine[5] = c.unacknowledged_count;
            mine[6] = c.failed_delivery_count;
            mine[7] = c.acknowledgement_count;
            mine[8] = c.retryable_count;
            mine[9] = c.execution_count;
            res = PQexecParams(db.conn, DM_REPORT_COUNTS_SQL, 4, NULL, params,
                               NULL, NULL, 0);
            if (PQresultStatus(res) != PGRES_TUPLES_OK)
                fail_msg("counts SQL: %s", PQresultErrorMessage(res));
            for (int k = 0; k < 10; k++) {
                got[k] = strtoll(PQgetvalue(res, 0, k), NULL, 10);
                if (mine[k] != got[k])
                    fail_msg("report count %d (window %s..%s, SLO %s): "
                             "report %lld, SQL %lld (seed %u)",
                             k, ws, we, slo, mine[k], got[k], dm_seed);
            }
            if (strcmp(c.recovery_report_id, PQgetvalue(res, 0, 10)) != 0 ||
                strcmp(c.escalation_plan_id, PQgetvalue(res, 0, 11)) != 0)
                fail_msg("report ids: %s %s, SQL %s %s", c.recovery_report_id,
                         c.escalation_plan_id, PQgetvalue(res, 0, 10),
                         PQgetvalue(res, 0, 11));
            PQclear(res);
            res = PQexecParams(db.conn, DM_REPORT_PROVIDERS_SQL, 5, NULL,
                               params, NULL, NULL, 0);
            if (PQresultStatus(res) != PGRES_TUPLES_OK)
                fail_msg("providers SQL: %s", PQresultErrorMessage(res));
            if ((size_t)PQntuples(res) != n)
                fail_msg("provider rows (window %s..%s): report %zu, SQL %d",
                         ws, we, n, PQntuples(res));
            for (size_t k = 0; k < n; k++) {
                const report_provider_row *r = &rows[k];
                char line[512];

                snprintf(line, sizeof(line),
                         "%s|%lld|%lld|%lld|%lld|%lld|%lld|%lld|%d|%lld|%lld|"
                         "%lld|%lld|%s|%s",
                         r->provider, (long long)r->escalation_count,
                         (long long)r->open_recovery_count,
                         (long long)r->critical_escalation_count,
                         (long long)r->slo_breached_count,
                         (long long)r->unacknowledged_count,
                         (long long)r->failed_delivery_count,
                         (long long)r->acknowledgement_count, r->latest_state,
                         (long long)r->execution_count,
                         (long long)r->execution_delivered_count,
                         (long long)r->execution_failed_count,
                         (long long)r->recovery_closure_count,
                         r->latest_execution_at, r->latest_closure_at);
                if (strcmp(line, PQgetvalue(res, (int)k, 0)) != 0)
                    fail_msg("provider row (window %s..%s, SLO %s): report "
                             "%s, SQL %s (seed %u)",
                             ws, we, slo, line, PQgetvalue(res, (int)k, 0),
                             dm_seed);
            }
            PQclear(res);
            free(rows);
            checked++;
        }
    }
    cv_db_tx_rollback(&db);
    cv_db_fini(&db);
    assert_int_equal(checked, 8);
}

/* What migration 0014 runs on a store with data. Other tests may write
 * meanwhile: its SHARE locks can deadlock with one of them, so it tries
 * again. */
static void
dm_rebuild(void)
{
    PGconn *c = PQconnectdb(cv_test_database_url());
    PGresult *res = NULL;

    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect: %s", PQerrorMessage(c));
    for (int attempt = 0; attempt < 5; attempt++) {
        PQclear(res);
        res = PQexec(c, "SELECT read_projections_rebuild()");
        if (PQresultStatus(res) == PGRES_TUPLES_OK)
            break;
        cv_test_sleep_ms(200);
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("read_projections_rebuild: %s", PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(c);
}

/* Reads the dashboard and SQL at its time; when they disagree, reads
 * again (up to 5 times) in case something else wrote in between (a
 * scheduler run of another test's enabled schedule). */
static void
dm_read(dm_reading *r)
{
    for (int attempt = 0;; attempt++) {
        char why[2 * DM_LINE_MAX];

        dm_dashboard(r);
        dm_sql(r);
        if (dm_difference(r, why, sizeof(why)) == NULL || attempt == 4)
            return;
        cv_test_sleep_ms(500);
    }
}

static void
test_dashboard_mix(void **state)
{
    dm_writer *w = calloc(DM_THREADS, sizeof(*w));
    pthread_t th[DM_THREADS];
    static dm_reading before, after, rebuilt;
    long long tally[DM_T_COUNT] = {0};
    char why[2 * DM_LINE_MAX];

    (void)state;
    assert_non_null(w);
    dm_read(&before);
    for (int t = 0; t < DM_THREADS; t++) {
        w[t].index = t;
        w[t].rng = dm_seed * 7919u + (unsigned int)t;
        assert_int_equal(pthread_create(&th[t], NULL, dm_writer_main, &w[t]),
                         0);
    }
    for (int t = 0; t < DM_THREADS; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < DM_THREADS; t++) {
        if (w[t].failures != 0)
            fail_msg("writer %d: %s (seed %u)", t, w[t].what, dm_seed);
        for (int k = 0; k < DM_T_COUNT; k++)
            tally[k] += w[t].tally[k];
    }
    dm_read(&after);
    if (dm_difference(&after, why, sizeof(why)) != NULL)
        fail_msg("%s (seed %u)", why, dm_seed);
    for (size_t i = 0; i < DM_N_COUNTERS; i++) {
        enum dm_tally t = dm_counters[i].tally;

        if (t != DM_T_NONE && after.dash[i] - before.dash[i] != tally[t])
            fail_msg("%s grew by %lld, the workload stored %lld (seed %u)",
                     dm_counters[i].field, after.dash[i] - before.dash[i],
                     tally[t], dm_seed);
    }
    print_message("dashboard_mix: seed %u, %lld plans, %lld acks, %lld "
                  "deliveries, %lld retry plans, %lld runs; %lld open "
                  "escalations in the store\n",
                  dm_seed, tally[DM_T_PLANS], tally[DM_T_ACKS],
                  tally[DM_T_DELIVERIES], tally[DM_T_RETRY_PLANS],
                  tally[DM_T_RUNS], after.dash[0]);
    /* The workload must have exercised the counters it is about. */
    assert_true(tally[DM_T_PLANS] > 0 && tally[DM_T_ACKS] > 0 &&
                tally[DM_T_FAILED] > 0 && tally[DM_T_RUNS] > 0);
    assert_true(after.n_dash_list > 0);
    dm_projections_agree();
    dm_check_reports();

    /* The backfill: projections recomputed from the tables read the same
     * (the dashboard against SQL again, and as before when nothing else
     * wrote in between). */
    dm_rebuild();
    dm_projections_agree();
    dm_read(&rebuilt);
    if (dm_difference(&rebuilt, why, sizeof(why)) != NULL)
        fail_msg("after read_projections_rebuild: %s (seed %u)", why, dm_seed);
    dm_check_reports();
    free(w);
}

static int
dm_setup(void **state)
{
    const char *seed = getenv("CAVRA_TEST_SEED");
    char rid[32];
    cv_error err;

    (void)state;
    cv_rpc_new_request_id(rid, sizeof(rid));
    snprintf(dm_tag, sizeof(dm_tag), "%.8s", rid + 4);
    dm_seed = seed != NULL && seed[0] != '\0'
                  ? (unsigned int)strtoul(seed, NULL, 10)
                  : (unsigned int)strtoul(rid + 12, NULL, 16);
    fprintf(stderr, "dashboard_mix: seed %u (CAVRA_TEST_SEED repeats it)\n",
            dm_seed);
    if (cv_test_stack_start(&dm_stack, CV_STACK_ALL) != 0)
        return -1;
    cv_error_clear(&err);
    if (cv_rpc_client_open(dm_stack.ack_url, &dm_ack, &err) != 0 ||
        cv_rpc_client_open(dm_stack.retry_url, &dm_retry, &err) != 0 ||
        cv_rpc_client_open(dm_stack.report_url, &dm_report, &err) != 0) {
        fprintf(stderr, "cannot open RPC clients: %s\n", err.msg);
        cv_test_stack_stop(&dm_stack);
        return -1;
    }
    return 0;
}

static int
dm_teardown(void **state)
{
    (void)state;
    cv_rpc_client_close(dm_ack);
    cv_rpc_client_close(dm_retry);
    cv_rpc_client_close(dm_report);
    return cv_test_stack_stop(&dm_stack);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dashboard_mix),
    };

    return cmocka_run_group_tests_name("dashboard_mix", tests, dm_setup,
                                       dm_teardown);
}
