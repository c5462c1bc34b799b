/*
 * cv_evidence.h -- the single append-only evidence stream.
 *
 * Every stored record appends exactly one event, inside the same
 * transaction as the record. Events get a gap-free-per-commit `id`
 * (bigserial); chain position and hash are assigned later by the evidence
 * sequencer, so request transactions never take a global lock.
 */
#ifndef CV_EVIDENCE_H
#define CV_EVIDENCE_H

#include "cv_db.h"

/* Evidence kinds, also the `kind` filter values of the stream. */
#define CV_KIND_PLAN       "recovery_escalation_plan"
#define CV_KIND_DELIVERY   "connector_delivery"
#define CV_KIND_ACK        "recovery_escalation_ack"
#define CV_KIND_RETRY_PLAN "recovery_escalation_retry_plan"
#define CV_KIND_REPORT_RUN "executive_report_schedule_run"
/* A schedule switched on or off, with who did it. */
#define CV_KIND_SCHEDULE_CHANGE "executive_report_schedule_change"

typedef struct cv_evidence_event {
    const char *kind;
    const char *record_id;
    const char *plan_id;     /* may be NULL (e.g. a retry plan over all) */
    const char *provider;    /* may be NULL */
    const char *actor;       /* verified actor or self-declared name */
    const char *request_id;  /* may be NULL for timer-made records */
    const char *created_at;  /* RFC 3339, cv_time_format */
    const char *record_json; /* the public-safe record, JSON text */
} cv_evidence_event;

/* The library's statements; cv_db prepares them on every connection. */
/* The columns every evidence row is written with, in this order; a
 * statement that writes its own row in one round trip with its record
 * (services/ack/ack_sql.c) names them through this, so the two writers
 * cannot drift apart. */
#define CV_EVIDENCE_INSERT                                                     \
    "INSERT INTO evidence_events (kind, record_id, plan_id, provider, actor,"  \
    " request_id, created_at, record, principal)"

extern const cv_db_statement cv_evidence_statements[];
extern const size_t cv_evidence_statement_count;

/* Appends one event. Call inside the transaction that stores the record.
 * The event's principal is db->principal (the RPC caller the connection
 * serves; NULL for timer-made records). Returns 0 or an error as
 * cv_db_exec does. */
int cv_evidence_append(cv_db *db, const cv_evidence_event *ev, cv_error *err);

#endif
