/*
 * retry_rpc.h -- the retry-planning service's RPC method table.
 */
#ifndef RETRY_RPC_H
#define RETRY_RPC_H

#include "cv_rpc.h"

#define RETRY_SERVICE_NAME "retry"
#define RETRY_URL_ENV      "CAVRA_RETRY_URL"
#define RETRY_DEFAULT_URL  "tcp://127.0.0.1:7102"

extern const cv_rpc_method retry_rpc_methods[];
extern const size_t retry_rpc_method_count;

#endif
