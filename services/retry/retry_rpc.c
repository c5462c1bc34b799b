/*
 * retry_rpc.c -- handlers of the retry-planning service. retry.Health is
 * answered by the RPC library.
 */
#include "retry_rpc.h"

const cv_rpc_method retry_rpc_methods[] = {
    {NULL, NULL, NULL, NULL},
};
const size_t retry_rpc_method_count = 0;
