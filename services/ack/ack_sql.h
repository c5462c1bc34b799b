/*
 * ack_sql.h -- all SQL of the acknowledgement service. No PGresult
 * leaves ack_sql.c.
 */
#ifndef ACK_SQL_H
#define ACK_SQL_H

#include <stddef.h>

#include "ack.pb-c.h"
#include "cv_db.h"

extern const cv_db_statement ack_sql_statements[];
extern const size_t ack_sql_statement_count;

/*
 * Stores a plan, its routes and its evidence event in one transaction.
 * record_json is the JSON form of plan: stored once, in the event (the
 * plan's row keeps only the columns queries need).
 */
int ack_sql_insert_plan(cv_db *db, const Cv__EscalationPlan *plan,
                        const char *record_json, const char *actor,
                        const char *request_id, cv_error *err);

/* Loads a stored plan record as JSON text (malloc'd; caller frees), or
 * CV_NOT_FOUND. */
int ack_sql_plan_record(cv_db *db, const char *plan_id, char **json,
                        cv_error *err);

/* Stores an acknowledgement, updates its pair's current state and appends
 * the evidence event, in one transaction. */
int ack_sql_insert_ack(cv_db *db, const Cv__Acknowledgement *ack,
                       const char *record_json, const char *actor,
                       const char *request_id, cv_error *err);

#endif
