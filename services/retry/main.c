/*
 * cavra-retry -- the retry-planning service daemon.
 *
 * Serves retry.RecordDelivery, retry.PlanRetries and retry.Health over NNG
 * req/rep. Run: CAVRA_DATABASE_URL=postgresql://... CAVRA_RETRY_URL=
 * tcp://127.0.0.1:7102 ./cavra-retry ; stops cleanly on SIGINT/SIGTERM.
 */
#include "cv_log.h"
#include "cv_service.h"
#include "retry_rpc.h"
#include "retry_sql.h"

int
main(void)
{
    cv_rpc_server_config cfg = {
        .service_name = RETRY_SERVICE_NAME,
        .methods = retry_rpc_methods,
        .n_methods = retry_rpc_method_count,
        .statements = retry_sql_statements,
        .n_statements = retry_sql_statement_count,
    };

    cv_log_init("cavra-retry");
    return cv_service_run(&cfg, RETRY_URL_ENV, RETRY_DEFAULT_URL, NULL);
}
