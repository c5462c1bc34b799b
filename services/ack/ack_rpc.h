/*
 * ack_rpc.h -- the acknowledgement service's RPC method table.
 */
#ifndef ACK_RPC_H
#define ACK_RPC_H

#include "cv_rpc.h"

#define ACK_SERVICE_NAME "ack"
#define ACK_URL_ENV      "CAVRA_ACK_URL"
#define ACK_DEFAULT_URL  "tcp://127.0.0.1:7101"

extern const cv_rpc_method ack_rpc_methods[];
extern const size_t ack_rpc_method_count;

#endif
