/*
 * ack_rpc.c -- handlers of the acknowledgement service:
 *   ack.RecordPlan   record a recovery escalation plan (docs/api.md)
 *   ack.Acknowledge  acknowledge an escalation for a provider (docs/api.md)
 *   ack.GetPlan      read one stored plan
 * Each handler validates and builds with ack_plan.c, stores with
 * ack_sql.c, and answers with the stored record.
 */
#include "ack_rpc.h"

#include <stdlib.h>

#include "ack_plan.h"
#include "ack_sql.h"
#include "cv_plan_ref.h"
#include "cv_record.h"
#include "cv_time.h"

static int
ack_rpc_record_plan(cv_rpc_ctx *call, const ProtobufCMessage *request,
                    ProtobufCMessage **reply, cv_error *err)
{
    const Cv__RecordPlanRequest *req = (const Cv__RecordPlanRequest *)request;
    Cv__EscalationPlan *plan = NULL;
    Cv__RecordPlanReply *rep;
    char *record = NULL;
    int rv;

    if ((rv = ack_plan_build(req, cv_actor_name(call->actor, NULL),
                             call->request_id, cv_now_us(), &plan, err)) != 0)
        return rv;
    if ((rep = malloc(sizeof(*rep))) == NULL) {
        protobuf_c_message_free_unpacked(&plan->base, NULL);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    cv__record_plan_reply__init(rep);
    rep->plan = plan;
    rep->metadata = ack_plan_metadata(plan);
    rep->actor = cv_actor_dup(call->actor);
    /* Only the record is stored; the metadata is rendered from it. */
    if ((rv = cv_record_stored_text(&plan->base, rep->metadata != NULL, &record,
                                    err)) == 0)
        rv = ack_sql_insert_plan(call->db, plan, record, plan->generated_by,
                                 call->request_id, err);
    free(record);
    return cv_record_reply(rv, &rep->base, reply);
}

static int
ack_rpc_acknowledge(cv_rpc_ctx *call, const ProtobufCMessage *request,
                    ProtobufCMessage **reply, cv_error *err)
{
    const Cv__AcknowledgeRequest *req = (const Cv__AcknowledgeRequest *)request;
    Cv__Acknowledgement *ack = NULL;
    Cv__AcknowledgeReply *rep = NULL;
    char *record = NULL;
    int rv;

    /* Input rules first (400), then the store: an id that cannot exist
     * is 404 at once; the plan and provider check (404, 400) is part of
     * the insert (ack_sql_insert_ack). */
    if ((rv = ack_ack_build(req, cv_actor_name(call->actor, NULL),
                            call->request_id, cv_now_us(), &ack, err)) != 0)
        return rv;
    if ((rv = cv_plan_ref_check_id(req->plan_id, err)) == 0 &&
        (rep = malloc(sizeof(*rep))) == NULL)
        rv = cv_error_set(err, CV_INTERNAL, "out of memory");
    if (rv != 0) {
        protobuf_c_message_free_unpacked(&ack->base, NULL);
        return rv;
    }
    cv__acknowledge_reply__init(rep);
    rep->acknowledgement = ack;
    rep->metadata = ack_ack_metadata(ack);
    rep->actor = cv_actor_dup(call->actor);
    if ((rv = cv_record_stored_text(&ack->base, rep->metadata != NULL, &record,
                                    err)) == 0)
        rv = ack_sql_insert_ack(call->db, ack, record, ack->acknowledged_by,
                                call->request_id, err);
    free(record);
    return cv_record_reply(rv, &rep->base, reply);
}

static int
ack_rpc_get_plan(cv_rpc_ctx *call, const ProtobufCMessage *request,
                 ProtobufCMessage **reply, cv_error *err)
{
    const Cv__GetPlanRequest *req = (const Cv__GetPlanRequest *)request;
    ProtobufCMessage *plan = NULL;
    Cv__GetPlanReply *rep;
    char *json = NULL;
    int rv;

    if ((rv = cv_plan_ref_check_id(req->plan_id, err)) != 0 ||
        (rv = ack_sql_plan_record(call->db, req->plan_id, &json, err)) != 0)
        return rv;
    rv = cv_record_load(&cv__escalation_plan__descriptor, json, &plan, err);
    free(json);
    if (rv != 0)
        return cv_error_set(err, CV_DATA_LOSS, "stored plan is unreadable");
    if ((rep = malloc(sizeof(*rep))) == NULL) {
        protobuf_c_message_free_unpacked(plan, NULL);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    cv__get_plan_reply__init(rep);
    rep->plan = (Cv__EscalationPlan *)plan;
    rep->actor = cv_actor_dup(call->actor);
    *reply = &rep->base;
    return 0;
}

const cv_rpc_method ack_rpc_methods[] = {
    {"ack.RecordPlan", ack_rpc_record_plan},
    {"ack.Acknowledge", ack_rpc_acknowledge},
    {"ack.GetPlan", ack_rpc_get_plan},
};
const size_t ack_rpc_method_count =
    sizeof(ack_rpc_methods) / sizeof(ack_rpc_methods[0]);
