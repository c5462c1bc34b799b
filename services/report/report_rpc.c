/*
 * report_rpc.c -- handlers of the reporting service. report.Health is
 * answered by the RPC library.
 */
#include "report_rpc.h"

const cv_rpc_method report_rpc_methods[] = {
    {NULL, NULL, NULL, NULL},
};
const size_t report_rpc_method_count = 0;
