/*
 * report_rpc.h -- the reporting service's RPC method table and the run
 * generation that the handlers and the scheduler share.
 */
#ifndef REPORT_RPC_H
#define REPORT_RPC_H

#include <stdbool.h>
#include <stdint.h>

#include "cv_rpc.h"
#include "report.pb-c.h"
#include "report_plan.h"

#define REPORT_SERVICE_NAME "report"
#define REPORT_URL_ENV      "CAVRA_REPORT_URL"
#define REPORT_DEFAULT_URL  "tcp://127.0.0.1:7103"

extern const cv_rpc_method report_rpc_methods[];
extern const size_t report_rpc_method_count;

/*
 * Returns the run of schedule s for the window holding now_us: the stored
 * one (*existing true) or a new one, computed from the store and stored
 * with its report, counted plans and evidence event in one transaction.
 * Exactly one run per (schedule, window) exists whatever the number of
 * concurrent callers or replicas. request_id may be NULL. With
 * scheduler set, the schedule's advisory lock is tried first and
 * CV_ABORTED returned when another replica holds it (nothing stored).
 * On success *out is a reply without actor (free with
 * protobuf_c_message_free_unpacked).
 */
int report_run_generate(cv_db *db, const report_schedule *s, int64_t now_us,
                        const char *request_id, bool scheduler,
                        Cv__ScheduleRunReply **out, bool *existing,
                        cv_error *err);

#endif
