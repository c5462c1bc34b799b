/*
 * cv_evidence.c -- appends events to the evidence stream.
 *
 * Only INSERT: the services' database role cannot UPDATE or DELETE events
 * (grants plus a trigger in the migrations).
 */
#include "cv_evidence.h"

const cv_db_statement cv_evidence_statements[] = {
    {"cv_evidence_append", CV_EVIDENCE_INSERT
     " VALUES ($1, $2, $3, $4, $5, $6, $7::timestamptz, $8::jsonb, $9)"},
};
const size_t cv_evidence_statement_count =
    sizeof(cv_evidence_statements) / sizeof(cv_evidence_statements[0]);

int
cv_evidence_append(cv_db *db, const cv_evidence_event *ev, cv_error *err)
{
    const char *params[9] = {ev->kind,       ev->record_id,   ev->plan_id,
                             ev->provider,   ev->actor,       ev->request_id,
                             ev->created_at, ev->record_json, db->principal};

    return cv_db_run(db, "cv_evidence_append", 9, params, err);
}
