/*
 * ack_sql.c -- the acknowledgement service's statements and the
 * transactions that store plans and acknowledgements with their evidence.
 */
#include "ack_sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_evidence.h"
#include "cv_plan_ref.h"
#include "cv_transcode.h"

const cv_db_statement ack_sql_statements[] = {
    {"ack_insert_plan",
     "INSERT INTO escalation_plans (plan_id, generated_at, generated_by,"
     " alert_level, recovery_slo_minutes, escalation_count,"
     " critical_escalation_count, slo_breached_count, failed_execution_count,"
     " open_recovery_count, providers, request_id)"
     " VALUES ($1, $2::timestamptz, $3, $4, $5::int, $6::int, $7::int,"
     " $8::int, $9::bigint, $10::int, $11::text[], $12)"},
    {"ack_insert_route",
     "INSERT INTO plan_routes (plan_id, position, provider, category,"
     " severity, closure_state, age_minutes, failure_count, slo_breached)"
     " VALUES ($1, $2::int, $3, $4, $5, $6, $7::bigint, $8::bigint,"
     " $9::boolean)"},
    /* A record is stored once, in its evidence event (migration 0013). */
    {"ack_plan_record", "SELECT record::text FROM evidence_events"
                        " WHERE kind = '" CV_KIND_PLAN "' AND record_id = $1"},
    /*
     * An acknowledgement in one statement (one round trip, one executor
     * start): the row, only if the plan exists and routes the provider
     * (plans are never updated, so the check is the plan row's); the
     * pair's current state, which only a later ack replaces; and its
     * evidence event, with the columns cv_evidence_append writes. No row
     * back: nothing was written, and ack_sql_insert_ack says why (404 or
     * the provider). Who acknowledged and the request id are the event's
     * (0013).
     */
    {"ack_insert_ack",
     "WITH p AS (SELECT 1 FROM escalation_plans"
     " WHERE plan_id = $2 AND $3 = ANY (providers)),"
     " a AS (INSERT INTO acknowledgements (acknowledgement_id, plan_id,"
     " provider, acknowledgement_state, acknowledged_at)"
     " SELECT $1, $2, $3, $4, $5::timestamptz FROM p RETURNING seq),"
     " c AS (INSERT INTO ack_current (plan_id, provider, acknowledgement_id,"
     " acknowledgement_state, seq) SELECT $2, $3, $1, $4, seq FROM a"
     " ON CONFLICT (plan_id, provider) DO UPDATE SET"
     " acknowledgement_id = EXCLUDED.acknowledgement_id,"
     " acknowledgement_state = EXCLUDED.acknowledgement_state,"
     " seq = EXCLUDED.seq WHERE ack_current.seq < EXCLUDED.seq),"
     " e AS (" CV_EVIDENCE_INSERT " SELECT '" CV_KIND_ACK
     "', $1, $2, $3, $6, $7, $5::timestamptz,"
     " $8::jsonb, $9 FROM a)"
     " SELECT seq FROM a"},
};
const size_t ack_sql_statement_count =
    sizeof(ack_sql_statements) / sizeof(ack_sql_statements[0]);

/* Formats a PostgreSQL text[] literal of simple identifiers (providers are
 * [a-z0-9._-] only, so no quoting is needed). Caller frees. */
static char *
ack_sql_text_array(char *const *items, size_t n)
{
    size_t len = 3;
    char *out, *p;

    for (size_t i = 0; i < n; i++)
        len += strlen(items[i]) + 1;
    if ((out = malloc(len)) == NULL)
        return NULL;
    p = out;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(items[i]);
        if (i > 0)
            *p++ = ',';
        memcpy(p, items[i], l);
        p += l;
    }
    *p++ = '}';
    *p = '\0';
    return out;
}

int
ack_sql_insert_plan(cv_db *db, const Cv__EscalationPlan *plan,
                    const char *record_json, const char *actor,
                    const char *request_id, cv_error *err)
{
    char num[7][24];
    char *providers;
    int rv;

    if ((providers = ack_sql_text_array(plan->selected_providers,
                                        plan->n_selected_providers)) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    snprintf(num[0], sizeof(num[0]), "%lld",
             (long long)plan->recovery_slo_minutes);
    snprintf(num[1], sizeof(num[1]), "%lld", (long long)plan->escalation_count);
    snprintf(num[2], sizeof(num[2]), "%lld",
             (long long)plan->critical_escalation_count);
    snprintf(num[3], sizeof(num[3]), "%lld",
             (long long)plan->slo_breached_count);
    snprintf(num[4], sizeof(num[4]), "%lld",
             (long long)plan->failed_execution_count);
    snprintf(num[5], sizeof(num[5]), "%lld",
             (long long)plan->open_recovery_count);
    {
        const char *params[12] = {
            plan->plan_id,
            plan->generated_at,
            plan->generated_by,
            cv_enum_json_name(&cv__alert_level__descriptor, plan->alert_level),
            num[0],
            num[1],
            num[2],
            num[3],
            num[4],
            num[5],
            providers,
            request_id,
        };
        cv_evidence_event ev = {
            .kind = CV_KIND_PLAN,
            .record_id = plan->plan_id,
            .plan_id = plan->plan_id,
            .provider = NULL,
            .actor = actor,
            .request_id = request_id,
            .created_at = plan->generated_at,
            .record_json = record_json,
        };

        if ((rv = cv_db_run(db, "ack_insert_plan", 12, params, err)) != 0)
            goto out;
        for (size_t i = 0; i < plan->n_escalation_routes; i++) {
            const Cv__EscalationRoute *r = plan->escalation_routes[i];
            const char *rp[9];

            snprintf(num[0], sizeof(num[0]), "%zu", i);
            snprintf(num[1], sizeof(num[1]), "%lld", (long long)r->age_minutes);
            snprintf(num[2], sizeof(num[2]), "%lld",
                     (long long)r->failure_count);
            rp[0] = plan->plan_id;
            rp[1] = num[0];
            rp[2] = r->provider;
            rp[3] = r->category;
            rp[4] = cv_enum_json_name(&cv__severity__descriptor, r->severity);
            rp[5] = r->closure_state;
            rp[6] = num[1];
            rp[7] = num[2];
            rp[8] = r->slo_breached ? "true" : "false";
            if ((rv = cv_db_run(db, "ack_insert_route", 9, rp, err)) != 0)
                goto out;
        }
        rv = cv_evidence_append(db, &ev, err);
    }
out:
    free(providers);
    return rv;
}

int
ack_sql_plan_record(cv_db *db, const char *plan_id, char **json, cv_error *err)
{
    const char *params[1] = {plan_id};
    PGresult *res;

    *json = NULL;
    if ((res = cv_db_exec(db, "ack_plan_record", 1, params, err)) == NULL)
        return err->code;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return cv_error_set(err, CV_NOT_FOUND, CV_PLAN_NOT_FOUND);
    }
    *json = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return *json != NULL ? 0 : cv_error_set(err, CV_INTERNAL, "out of memory");
}

int
ack_sql_insert_ack(cv_db *db, const Cv__Acknowledgement *ack,
                   const char *record_json, const char *actor,
                   const char *request_id, cv_error *err)
{
    const char *state = cv_enum_json_name(&cv__ack_state__descriptor,
                                          ack->acknowledgement_state);
    /* The record itself is stored once, in the evidence event; the
     * event's principal is the connection's caller (cv_evidence.h). */
    const char *params[9] = {
        ack->acknowledgement_id, ack->plan_id, ack->provider, state,
        ack->acknowledged_at,    actor,        request_id,    record_json,
        db->principal,
    };
    int rv;

    if ((rv = cv_plan_ref_check_id(ack->plan_id, err)) != 0)
        return rv;
    /* A plan committed between the statement's snapshot and the check
     * below is there for a second try; plans never lose a route. */
    for (int attempt = 0; attempt < 2; attempt++) {
        PGresult *res;
        int rows;

        if ((res = cv_db_exec(db, "ack_insert_ack", 9, params, err)) == NULL)
            return err->code;
        rows = PQntuples(res);
        PQclear(res);
        if (rows == 1)
            return 0;
        /* Nothing written: the plan is unknown (404) or does not route
         * the provider (400 naming its providers). */
        if ((rv = cv_plan_ref_check_routed(db, ack->plan_id, ack->provider,
                                           err)) != 0)
            return rv;
    }
    cv_error_set(err, CV_INTERNAL, "internal storage error");
    cv_error_cause(err, "ack_insert_ack: no row for a routed provider");
    return CV_INTERNAL;
}
