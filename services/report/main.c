/*
 * cavra-report -- the reporting service daemon.
 *
 * Serves report.ScheduleRun, report.Dashboard, report.ListEvidence,
 * report.Trace, report.VerifyEvidence and report.Health over NNG req/rep, and
 * runs the scheduler that generates each enabled schedule's run at every window
 * boundary. Run: CAVRA_DATABASE_URL=postgresql://... CAVRA_REPORT_URL=
 * tcp://127.0.0.1:7103 [CAVRA_SCHEDULER_TICK_MS=1000] ./cavra-report ;
 * stops cleanly on SIGINT/SIGTERM.
 */
#include <stdlib.h>

#include "cv_log.h"
#include "cv_service.h"
#include "report_rpc.h"
#include "report_sched.h"
#include "report_sql.h"

int
main(void)
{
    static report_sched sched;
    /* One worker more than CAVRA_DB_WORKERS: report.VerifyEvidence runs
     * one at a time (report_rpc.c), so it can hold this one at most. */
    const cv_service_hooks hooks = {
        .start = report_sched_start,
        .stop = report_sched_stop,
        .extra_db_workers = 1,
    };
    cv_rpc_server_config cfg = {
        .service_name = REPORT_SERVICE_NAME,
        .methods = report_rpc_methods,
        .n_methods = report_rpc_method_count,
        .statements = report_sql_statements,
        .n_statements = report_sql_statement_count,
        .service = &sched,
    };

    cv_log_init("cavra-report");
    /* Reads may go to a streaming standby (lib/cv_rpc.h). */
    cfg.read_database_url = getenv(CV_DB_READ_URL_ENV);
    report_limits_from_env(&sched.limits);
    return cv_service_run(&cfg, REPORT_URL_ENV, REPORT_DEFAULT_URL, &hooks);
}
