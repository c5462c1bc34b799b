/*
 * ack_plan.h -- the acknowledgement service's record logic, free of I/O:
 * validating requests and building escalation plan and acknowledgement
 * records (docs/api.md, 5.1). Unit-tested directly.
 */
#ifndef ACK_PLAN_H
#define ACK_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "ack.pb-c.h"
#include "cv_error.h"

#define ACK_PLAN_SCHEMA                                                        \
    "cavra.go-backend-pilot.rollback-drill-acknowledgement-audit-delivery-"    \
    "recovery-escalation-plan.v1"
#define ACK_ACK_SCHEMA                                                         \
    "cavra.go-backend-pilot.rollback-drill-acknowledgement-audit-delivery-"    \
    "recovery-escalation-ack.v1"
#define ACK_PLAN_METADATA_KIND                                                 \
    "go-backend-rollback-drill-acknowledgement-audit-delivery-recovery-"       \
    "escalation-plan"
#define ACK_ACK_METADATA_KIND                                                  \
    "go-backend-rollback-drill-acknowledgement-audit-delivery-recovery-"       \
    "escalation-ack"
#define ACK_PLAN_ID_PREFIX "gordackrecoveryesc-"
#define ACK_ACK_ID_PREFIX  "gordackrecoveryescack-"
#define ACK_SIGNER         "cavra-recovery/acknowledgement-service"

#define ACK_MAX_ROUTES       200
#define ACK_PROVIDER_MAX     64
#define ACK_ACKNOWLEDGER_MAX 128
#define ACK_EXTERNAL_REF_MAX 128
#define ACK_NOTES_MAX        2000
#define ACK_REASON_MAX       500

/*
 * Validates a plan request and builds the plan record: normalised routes
 * (sorted critical first, then failure_count desc, then age desc), counts,
 * summary, controls, generated_at = now_us and the id. generated_by is the
 * verified actor when actor_name is not NULL. Returns 0 with *out (free
 * with protobuf_c_message_free_unpacked) or CV_INVALID_ARGUMENT naming the
 * field and rule.
 */
int ack_plan_build(const Cv__RecordPlanRequest *req, const char *actor_name,
                   const char *request_id, int64_t now_us,
                   Cv__EscalationPlan **out, cv_error *err);

/* Builds the metadata that accompanies a stored plan (takes a deep copy of
 * plan). Returns NULL when out of memory. */
Cv__PlanMetadata *ack_plan_metadata(const Cv__EscalationPlan *plan);

/*
 * Validates an acknowledgement request and builds its record (everything
 * but the plan checks, which need the store). actor_name, when not NULL,
 * overrides acknowledged_by. Returns 0 with *out or CV_INVALID_ARGUMENT
 * with the docs/api.md message.
 */
int ack_ack_build(const Cv__AcknowledgeRequest *req, const char *actor_name,
                  const char *request_id, int64_t now_us,
                  Cv__Acknowledgement **out, cv_error *err);

/* Builds the acknowledgement's metadata (deep copy). NULL on OOM. */
Cv__AckMetadata *ack_ack_metadata(const Cv__Acknowledgement *ack);

#endif
