/*
 * retry_rpc.c -- handlers of the retry-planning service:
 *   retry.RecordDelivery  record a connector's delivery attempt (docs/api.md)
 *   retry.PlanRetries     plan retries of failed deliveries (docs/api.md)
 * retry.Health is answered by the RPC library. Each handler validates and
 * builds with retry_rules.c, reads and stores with retry_sql.c, and
 * answers with the stored record.
 */
#include "retry_rpc.h"

#include <stdlib.h>

#include "cv_plan_ref.h"
#include "cv_record.h"
#include "cv_time.h"
#include "cv_validate.h"
#include "retry_rules.h"
#include "retry_sql.h"

/* Room the RPC envelope around a reply payload needs at most (code,
 * message, flags); a reply larger than CV_RPC_REPLY_MAX minus this would
 * be dropped by the client. */
#define RETRY_REPLY_HEADROOM (16 * 1024)

static int
retry_rpc_record_delivery(cv_rpc_ctx *call, const ProtobufCMessage *request,
                          ProtobufCMessage **reply, cv_error *err)
{
    const Cv__RecordDeliveryRequest *req =
        (const Cv__RecordDeliveryRequest *)request;
    Cv__DeliveryRecord *rec = NULL;
    Cv__RecordDeliveryReply *rep = NULL;
    char *record = NULL;
    char attempt_at[CV_TIME_MAX];
    int64_t attempt_us = 0;
    int rv;

    /* Input rules first (400), then the store (404, provider check). */
    if ((rv = retry_delivery_build(req, call->request_id, cv_now_us(), &rec,
                                   &attempt_us, err)) != 0)
        return rv;
    if ((rv = cv_plan_ref_check_routed(call->db, req->plan_id, rec->provider,
                                       err)) == 0 &&
        (rep = malloc(sizeof(*rep))) == NULL)
        rv = cv_error_set(err, CV_INTERNAL, "out of memory");
    if (rv != 0) {
        protobuf_c_message_free_unpacked(&rec->base, NULL);
        return rv;
    }
    cv__record_delivery_reply__init(rep);
    rep->delivery = rec;
    rep->actor = cv_actor_dup(call->actor);
    cv_time_format(attempt_us, attempt_at);
    if ((rv = cv_record_stored_text(&rec->base, true, &record, err)) == 0)
        rv = retry_sql_insert_delivery(call->db, rec, attempt_at, record,
                                       cv_actor_name(call->actor, NULL),
                                       call->request_id, err);
    free(record);
    return cv_record_reply(rv, &rep->base, reply);
}

/* Decides every streak into a malloc'd array of *n_out decisions (NULL
 * when there are none). Returns 0 or CV_INTERNAL. */
static int
retry_rpc_decide_all(const retry_streak *streaks, size_t n,
                     const retry_policy *policy, int64_t now_us,
                     Cv__RetryDecision ***out, size_t *n_out, cv_error *err)
{
    Cv__RetryDecision **d;
    size_t made = 0;
    int rv = 0;

    *out = NULL;
    *n_out = 0;
    if (n == 0)
        return 0;
    if ((d = calloc(n, sizeof(*d))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    for (size_t i = 0; i < n && rv == 0; i++) {
        const retry_streak *s = &streaks[i];

        rv = retry_decide(s->plan_id, s->provider, s->failures, s->n_failures,
                          retry_ack_state_from_name(s->ack_state), policy,
                          now_us, &d[made], err);
        /* A streak always holds a failure, but stay general. */
        if (rv == 0 && d[made] != NULL)
            made++;
    }
    if (rv != 0) {
        for (size_t i = 0; i < made; i++)
            protobuf_c_message_free_unpacked(&d[i]->base, NULL);
        free(d);
        return rv;
    }
    *out = d;
    *n_out = made;
    return 0;
}

static int
retry_rpc_plan_retries(cv_rpc_ctx *call, const ProtobufCMessage *request,
                       ProtobufCMessage **reply, cv_error *err)
{
    const Cv__RetryPlanRequest *req = (const Cv__RetryPlanRequest *)request;
    Cv__RetryPlanReply *rep = NULL;
    Cv__RetryPlan *plan = NULL;
    Cv__RetryDecision **decisions = NULL;
    retry_streak *streaks = NULL;
    size_t n_streaks = 0, n_decisions = 0, keep;
    char *next_cursor = NULL;
    retry_page page = {0};
    char *generated_by = NULL, *plan_id = NULL, *record = NULL;
    retry_policy policy;
    int64_t now_us = cv_now_us();
    size_t size;
    int rv;

    /* Input rules first (400), then the plan filter (404). */
    if ((rv = retry_plan_request_check(req, cv_actor_name(call->actor, NULL),
                                       &policy, &generated_by, err)) != 0)
        return rv;
    /* A blank filter is no filter, like any other blank optional text. */
    if (req->plan_id != NULL) {
        if ((plan_id = cv_trim_dup(req->plan_id)) == NULL) {
            rv = cv_error_set(err, CV_INTERNAL, "out of memory");
            goto out;
        }
        if (plan_id[0] == '\0') {
            free(plan_id);
            plan_id = NULL;
        }
    }
    if ((rv = retry_page_resolve(req, plan_id, &page, err)) != 0 ||
        (plan_id != NULL &&
         (rv = cv_plan_ref_exists(call->db, plan_id, err)) != 0))
        goto out;
    /* One pair more than the page holds tells whether another follows. */
    if ((rv = retry_sql_streaks(call->db, plan_id, page.after_plan,
                                page.after_provider, page.limit + 1, &streaks,
                                &n_streaks, err)) != 0 ||
        (rv = retry_rpc_decide_all(streaks, n_streaks, &policy, now_us,
                                   &decisions, &n_decisions, err)) != 0)
        goto out;
    /* The decisions are in the store's pair order here (the plan sorts
     * them again): the cursor is the last pair the page keeps. */
    keep = retry_page_cut(decisions, n_decisions, page.limit, RETRY_PAGE_BYTES);
    if (keep < n_decisions) {
        if ((next_cursor =
                 retry_cursor_encode(decisions[keep - 1]->plan_id,
                                     decisions[keep - 1]->provider)) == NULL) {
            rv = cv_error_set(err, CV_INTERNAL, "out of memory");
            goto out;
        }
        for (size_t i = keep; i < n_decisions; i++)
            protobuf_c_message_free_unpacked(&decisions[i]->base, NULL);
        n_decisions = keep;
    }
    if ((rv = retry_plan_build(&policy, generated_by, plan_id, &decisions,
                               n_decisions, call->request_id, now_us, &plan,
                               err)) != 0)
        goto out;

    if ((rep = malloc(sizeof(*rep))) == NULL) {
        rv = cv_error_set(err, CV_INTERNAL, "out of memory");
        goto out;
    }
    cv__retry_plan_reply__init(rep);
    rep->plan = plan;
    plan = NULL;
    rep->metadata = retry_plan_metadata(rep->plan);
    rep->actor = cv_actor_dup(call->actor);
    rep->next_cursor = next_cursor;
    next_cursor = NULL;
    /* Only the record is stored; the metadata is rendered from it. */
    if ((rv = cv_record_stored_text(&rep->plan->base, rep->metadata != NULL,
                                    &record, err)) != 0)
        goto out;
    /* Refuse before storing a plan whose reply could not be delivered. */
    size = protobuf_c_message_get_packed_size(&rep->base);
    if (size > CV_RPC_REPLY_MAX - RETRY_REPLY_HEADROOM) {
        rv = cv_error_set(err, CV_FAILED_PRECONDITION,
                          "a retry plan page of %zu pairs is too large for "
                          "one reply; ask for fewer pairs with limit",
                          rep->plan->n_retry_decisions);
        goto out;
    }
    rv = retry_sql_insert_plan(call->db, rep->plan, record, call->request_id,
                               err);
out:
    retry_sql_free_streaks(streaks, n_streaks);
    retry_page_free(&page);
    free(next_cursor);
    if (decisions != NULL) {
        for (size_t i = 0; i < n_decisions; i++)
            protobuf_c_message_free_unpacked(&decisions[i]->base, NULL);
        free(decisions);
    }
    free(generated_by);
    free(plan_id);
    free(record);
    if (plan != NULL)
        protobuf_c_message_free_unpacked(&plan->base, NULL);
    return cv_record_reply(rv, (ProtobufCMessage *)rep, reply);
}

const cv_rpc_method retry_rpc_methods[] = {
    {"retry.RecordDelivery", retry_rpc_record_delivery},
    {"retry.PlanRetries", retry_rpc_plan_retries},
};
const size_t retry_rpc_method_count =
    sizeof(retry_rpc_methods) / sizeof(retry_rpc_methods[0]);
