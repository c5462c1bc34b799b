/*
 * report_rpc.h -- the reporting service's RPC method table.
 */
#ifndef REPORT_RPC_H
#define REPORT_RPC_H

#include "cv_rpc.h"

#define REPORT_SERVICE_NAME "report"
#define REPORT_URL_ENV      "CAVRA_REPORT_URL"
#define REPORT_DEFAULT_URL  "tcp://127.0.0.1:7103"

extern const cv_rpc_method report_rpc_methods[];
extern const size_t report_rpc_method_count;

#endif
