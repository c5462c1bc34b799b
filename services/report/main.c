/*
 * cavra-report -- the reporting service daemon.
 *
 * Serves report.ScheduleRun, report.Dashboard, report.ListEvidence,
 * report.Trace and report.Health over NNG req/rep, and runs the scheduler
 * that generates each enabled schedule's run at every window boundary.
 * Run: CAVRA_DATABASE_URL=postgresql://... CAVRA_REPORT_URL=
 * tcp://127.0.0.1:7103 [CAVRA_SCHEDULER_TICK_MS=1000] ./cavra-report ;
 * stops cleanly on SIGINT/SIGTERM.
 */
#include "cv_log.h"
#include "cv_service.h"
#include "report_rpc.h"
#include "report_sched.h"
#include "report_sql.h"

int
main(void)
{
    static report_sched sched;
    const cv_service_hooks hooks = {
        .start = report_sched_start,
        .stop = report_sched_stop,
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
    return cv_service_run(&cfg, REPORT_URL_ENV, REPORT_DEFAULT_URL, &hooks);
}
