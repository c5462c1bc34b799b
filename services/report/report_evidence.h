/*
 * report_evidence.h -- handlers of the evidence log's reads (docs/evidence.md);
 * see report_evidence.c. report_rpc.c binds them to the registry.
 */
#ifndef REPORT_EVIDENCE_H
#define REPORT_EVIDENCE_H

#include "cv_rpc.h"

int report_evidence_checkpoint(cv_rpc_ctx *call,
                               const ProtobufCMessage *request,
                               ProtobufCMessage **reply, cv_error *err);
int report_evidence_public_key(cv_rpc_ctx *call,
                               const ProtobufCMessage *request,
                               ProtobufCMessage **reply, cv_error *err);
int report_inclusion_proof(cv_rpc_ctx *call, const ProtobufCMessage *request,
                           ProtobufCMessage **reply, cv_error *err);
int report_consistency_proof(cv_rpc_ctx *call, const ProtobufCMessage *request,
                             ProtobufCMessage **reply, cv_error *err);
int report_evidence_tile(cv_rpc_ctx *call, const ProtobufCMessage *request,
                         ProtobufCMessage **reply, cv_error *err);

#endif
