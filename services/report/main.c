/*
 * cavra-report -- the reporting service daemon.
 *
 * Run: CAVRA_DATABASE_URL=postgresql://...
 * CAVRA_REPORT_URL=tcp://127.0.0.1:7103
 * ./cavra-report ; stops cleanly on SIGINT/SIGTERM.
 */
#include "cv_log.h"
#include "cv_service.h"
#include "report_rpc.h"
#include "report_sql.h"

int
main(void)
{
    cv_rpc_server_config cfg = {
        .service_name = REPORT_SERVICE_NAME,
        .methods = report_rpc_methods,
        .n_methods = report_rpc_method_count,
        .statements = report_sql_statements,
        .n_statements = report_sql_statement_count,
    };

    cv_log_init("cavra-report");
    return cv_service_run(&cfg, REPORT_URL_ENV, REPORT_DEFAULT_URL, NULL);
}
