/*
 * retry_rules.h -- the retry-planning service's record logic, free of I/O:
 * validating delivery-attempt intake (docs/api.md), resolving a retry policy,
 * deciding retry/wait/suppress for one (plan, provider) pair and
 * assembling the retry plan (docs/api.md). Unit-tested directly.
 */
#ifndef RETRY_RULES_H
#define RETRY_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_error.h"
#include "retry.pb-c.h"

#define RETRY_DELIVERY_SCHEMA                                                  \
    "cavra.go-backend-pilot.rollback-drill-acknowledgement-audit-delivery-"    \
    "connector-delivery.v1"
#define RETRY_PLAN_SCHEMA                                                      \
    "cavra.go-backend-pilot.rollback-drill-acknowledgement-audit-delivery-"    \
    "recovery-escalation-delivery-retry-plan.v1"
#define RETRY_PLAN_METADATA_KIND                                               \
    "go-backend-rollback-drill-acknowledgement-audit-delivery-recovery-"       \
    "escalation-delivery-retry-plan"
#define RETRY_DELIVERY_SOURCE                                                  \
    "go_backend_rollback_drill_acknowledgement_audit_recovery_escalation"
#define RETRY_DELIVERY_METADATA_KIND "release-connector-delivery"
#define RETRY_DELIVERY_ID_PREFIX     "rcd-"
#define RETRY_PLAN_ID_PREFIX         "gordackrecoveryescretry-"
#define RETRY_SIGNER                 "cavra-recovery/retry-planning-service"

#define RETRY_PROVIDER_MAX      64
#define RETRY_ERROR_MAX         500
#define RETRY_GENERATED_BY_MAX  128
#define RETRY_STATUS_CODE_MAX   599
#define RETRY_ATTEMPT_COUNT_MAX 1000

/* docs/api.md policy defaults and ranges. */
#define RETRY_MAX_ATTEMPTS_DEFAULT 3
#define RETRY_MAX_ATTEMPTS_MIN     1
#define RETRY_MAX_ATTEMPTS_MAX     100
#define RETRY_DELAY_DEFAULT        15.0
#define RETRY_DELAY_IMMEDIATE      0.0 /* default and minimum when allowed */
#define RETRY_DELAY_MIN            1.0
#define RETRY_DELAY_MAX            10080.0
#define RETRY_MULTIPLIER_DEFAULT   2.0
#define RETRY_MULTIPLIER_MIN       1.0
#define RETRY_MULTIPLIER_MAX       10.0
/* A pair's computed delay is capped here (about 10,000 years) so that a
 * long failure streak with a large multiplier stays a finite number. */
#define RETRY_DELAY_CAP_MINUTES 5256000000.0

/*
 * Validates a delivery-attempt request (everything but the plan checks,
 * which need the store) and builds its record: provider normalised,
 * timestamps normalised to cv_time_format, error redacted, created_at =
 * now_us, delivery_id derived from the record and request_id. Sets
 * *attempt_at_us to the attempt's time (completed_at, else started_at,
 * else created_at). Returns 0 with *out (free with
 * protobuf_c_message_free_unpacked) or CV_INVALID_ARGUMENT naming the
 * field and rule.
 */
int retry_delivery_build(const Cv__RecordDeliveryRequest *req,
                         const char *request_id, int64_t now_us,
                         Cv__DeliveryRecord **out, int64_t *attempt_at_us,
                         cv_error *err);

/* A resolved retry policy: every value present and in range. */
typedef struct retry_policy {
    int64_t max_retry_attempts;
    bool allow_immediate_retry;
    double retry_delay_minutes;
    double backoff_multiplier;
} retry_policy;

/*
 * Resolves the request's policy (NULL: all defaults): aliases folded in
 * (a name and its alias with different values is an error), defaults
 * applied, ranges checked. Errors are CV_INVALID_ARGUMENT naming the field
 * as the client wrote it, e.g. "retry_policy.max_retries must be between
 * 1 and 100".
 */
int retry_policy_resolve(const Cv__RetryPolicy *in, retry_policy *out,
                         cv_error *err);

/*
 * Validates the parts of a retry plan request that need no store: the
 * policy and generated_by (<= 128, redacted, default "console"; the
 * verified actor_name overrides it). Returns 0 with *generated_by
 * malloc'd (caller frees) or CV_INVALID_ARGUMENT.
 */
int retry_plan_request_check(const Cv__RetryPlanRequest *req,
                             const char *actor_name, retry_policy *policy,
                             char **generated_by, cv_error *err);

/* One recorded delivery attempt of a pair, as far as the rules need it. */
typedef struct retry_attempt {
    const char *delivery_id;
    int64_t at_us; /* completed_at, else started_at, else created_at */
    int64_t seq;   /* recording order: breaks ties of at_us */
    bool success;
    bool has_status_code;
    int64_t status_code;
} retry_attempt;

/* True unless the status is an HTTP 4xx other than 408 and 429; an
 * attempt without a status code (or status 0, unreachable) is retryable. */
bool retry_status_retryable(bool has_status_code, int64_t status_code);

/* retry_delay_minutes * backoff_multiplier^(retry_count - 1), capped at
 * RETRY_DELAY_CAP_MINUTES. retry_count >= 1. */
double retry_delay_for(const retry_policy *policy, int64_t retry_count);

/* The Cv__AckState of a stored state name ("resolved"), or 0 when name is
 * NULL or not a state. */
int retry_ack_state_from_name(const char *name);

/*
 * Decides one pair (docs/api.md). attempts are the pair's recorded attempts
 * in any order: all of them, or (as retry_sql.c loads them) only those
 * after its latest success. They are ordered by time, then seq; only the
 * failures after the latest success count. ack_state is the pair's
 * current Cv__AckState, 0 when it has none; now_us is the plan's time.
 * Suppress (cap reached, then a non-retryable latest failure, then a
 * dismissed or resolved acknowledgement) beats wait (now < next_retry_at)
 * beats retry. Returns 0 with *out set (free with
 * protobuf_c_message_free_unpacked), or 0 with *out NULL when the pair
 * gets no decision (no failure after its latest success), or CV_INTERNAL
 * when out of memory.
 */
int retry_decide(const char *plan_id, const char *provider,
                 const retry_attempt *attempts, size_t n, int ack_state,
                 const retry_policy *policy, int64_t now_us,
                 Cv__RetryDecision **out, cv_error *err);

/*
 * Builds the retry plan around decisions: sorted by plan_id then provider,
 * counts, alert level (critical if any retry, warning if any wait, else
 * healthy), policy, controls, generated_at = now_us and the id derived
 * from the record and request_id. plan_id is the request's filter (may be
 * NULL). Takes ownership of *decisions (a malloc'd array of n decisions)
 * in every case and sets *decisions to NULL. Returns 0 with *out (free
 * with protobuf_c_message_free_unpacked) or CV_INTERNAL.
 */
int retry_plan_build(const retry_policy *policy, const char *generated_by,
                     const char *plan_id, Cv__RetryDecision ***decisions,
                     size_t n, const char *request_id, int64_t now_us,
                     Cv__RetryPlan **out, cv_error *err);

/*
 * Paging (docs/api.md extension). A retry plan covers at most `limit` pairs
 * (default RETRY_PAGE_LIMIT_DEFAULT, 1..RETRY_PAGE_LIMIT_MAX) and at most
 * RETRY_PAGE_BYTES of packed decisions, so that its reply always fits in
 * one RPC message (CV_RPC_REPLY_MAX) with room to spare: the reply holds
 * the plan twice (record and metadata) and the gateway's JSON is larger
 * than protobuf. A bigger store is answered in pages, each a retry plan of
 * its own; the reply's next_cursor names the last pair of the page and
 * asks for the pairs after it.
 */
#define RETRY_PAGE_LIMIT_DEFAULT 1000
#define RETRY_PAGE_LIMIT_MAX     5000
#define RETRY_PAGE_BYTES         (2 * 1024 * 1024)
#define RETRY_CURSOR_PLAN_MAX    128

typedef struct retry_page {
    char *after_plan;     /* the cursor's pair; NULL: the first page */
    char *after_provider; /* NULL with after_plan */
    int64_t limit;
} retry_page;

/*
 * Resolves the request's limit and cursor into *out (free with
 * retry_page_free). plan_id is the request's trimmed filter or NULL; a
 * cursor from a listing of another plan is refused. Errors are
 * CV_INVALID_ARGUMENT: "limit must be between 1 and 5000", "cursor is
 * invalid", "cursor is not from a retry plan of this plan_id".
 */
int retry_page_resolve(const Cv__RetryPlanRequest *req, const char *plan_id,
                       retry_page *out, cv_error *err);
void retry_page_free(retry_page *page);

/* The opaque cursor of the pair (plan_id, provider): lowercase hex of
 * "r1\n<plan_id>\n<provider>". malloc'd; NULL when out of memory. */
char *retry_cursor_encode(const char *plan_id, const char *provider);

/*
 * Reads a cursor back into malloc'd *plan_id and *provider. Only what
 * retry_cursor_encode writes for a plan id of 1..RETRY_CURSOR_PLAN_MAX
 * characters of [A-Za-z0-9._-] and a provider of 1..RETRY_PROVIDER_MAX of
 * [a-z0-9._-] is accepted; anything else is CV_INVALID_ARGUMENT "cursor is
 * invalid" (or CV_INTERNAL when out of memory).
 */
int retry_cursor_decode(const char *cursor, char **plan_id, char **provider,
                        cv_error *err);

/*
 * How many of the n decisions (in page order) one page keeps: at most
 * limit, and no more than fit in max_bytes of packed decisions, but
 * always the first one (a page makes progress).
 */
size_t retry_page_cut(Cv__RetryDecision *const *decisions, size_t n,
                      int64_t limit, size_t max_bytes);

/* Builds the plan's metadata (takes a deep copy of plan). NULL on OOM. */
Cv__RetryPlanMetadata *retry_plan_metadata(const Cv__RetryPlan *plan);

#endif
