/*
 * cv_test_ack.h -- the acknowledgement service inside the test process
 * (cv_test_inproc, cv_test_proc.h): its real methods and statements, one
 * database worker, ack.Acknowledge wrapped by the test's handler (which
 * calls s->real and then injects what it tests).
 *
 * Header only: cv_test_support does not link ack_core; include it from
 * tests that do (cv_integration_test(name ack_core ...)).
 */
#ifndef CV_TEST_ACK_H
#define CV_TEST_ACK_H

#include "ack_rpc.h"
#include "ack_sql.h"
#include "cv_test_proc.h"
#include "cv_test_stack.h"

/* Starts it on a private socket named after tag, with `contexts`
 * requests in flight at most; 0 or -1 (printed why), as
 * cv_test_inproc_start. One worker: concurrent calls queue (groups form)
 * and each call runs on the connection that saw the one before. */
static inline int
cv_test_ack_inproc_start(cv_test_inproc *s, const char *tag, int contexts,
                         cv_rpc_handler_fn wrap_ack)
{
    const cv_rpc_server_config cfg = {
        .service_name = ACK_SERVICE_NAME,
        .database_url = cv_test_database_url(),
        .contexts = contexts,
        .db_workers = 1,
        .statements = ack_sql_statements,
        .n_statements = ack_sql_statement_count,
    };

    if (cfg.database_url == NULL)
        return -1;
    return cv_test_inproc_start(s, tag, &cfg, ack_rpc_methods,
                                ack_rpc_method_count, "ack.Acknowledge",
                                wrap_ack);
}

#endif
