/*
 * cavra-ack -- the acknowledgement service daemon.
 *
 * Serves ack.RecordPlan, ack.Acknowledge, ack.GetPlan and ack.Health over
 * NNG req/rep. Run: CAVRA_DATABASE_URL=postgresql://... CAVRA_ACK_URL=
 * tcp://127.0.0.1:7101 ./cavra-ack ; stops cleanly on SIGINT/SIGTERM.
 */
#include "ack_rpc.h"
#include "ack_sql.h"
#include "cv_log.h"
#include "cv_service.h"

int
main(void)
{
    cv_rpc_server_config cfg = {
        .service_name = ACK_SERVICE_NAME,
        .methods = ack_rpc_methods,
        .n_methods = ack_rpc_method_count,
        .statements = ack_sql_statements,
        .n_statements = ack_sql_statement_count,
    };

    cv_log_init("cavra-ack");
    return cv_service_run(&cfg, ACK_URL_ENV, ACK_DEFAULT_URL, NULL);
}
