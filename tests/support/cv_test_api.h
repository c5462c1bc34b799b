/*
 * cv_test_api.h -- what the integration and end-to-end tests assert
 * through: values at JSON paths of an HTTP answer, the documented error body
 * {detail, code, request_id}, "nothing was stored" (row counts of every
 * table of the store, before and after), and the RPCs that make the
 * records a test needs.
 *
 * Functions named *_call return a code and never touch cmocka, so worker
 * threads may use them; every other function fails the running cmocka
 * test (fail_msg or an assert_*) with a message that names what differed.
 * Include <cmocka.h> (with its prerequisites) before this header.
 */
#ifndef CV_TEST_API_H
#define CV_TEST_API_H

#include <jansson.h>
#include <libpq-fe.h>

#include "ack.pb-c.h"
#include "cv_rpc.h"
#include "cv_test_http.h"
#include "cv_test_stack.h"

/* ---- JSON ------------------------------------------------------------- */

/* Looks up "a.b[2].c" in root; NULL when any step is missing. */
json_t *cv_test_json_get(json_t *root, const char *path);

/* The string at path; fails when it is missing or not a string. The text
 * belongs to root. */
const char *cv_test_json_str(json_t *root, const char *path);

/* The integer at path; fails when it is missing or not an integer. */
long long cv_test_json_int(json_t *root, const char *path);

/* The value at path must be exactly want (a string, an integer, JSON
 * null, a boolean: want 0 or 1). */
void cv_test_assert_str(json_t *root, const char *path, const char *want);
void cv_test_assert_int(json_t *root, const char *path, long long want);
void cv_test_assert_null(json_t *root, const char *path);
void cv_test_assert_bool(json_t *root, const char *path, int want);

/* id must be prefix + exactly 16 lowercase hex digits (not NULL). */
void cv_test_assert_id(const char *id, const char *prefix);

/* t must be an RFC 3339 UTC date-time:
 * "YYYY-MM-DDTHH:MM:SS[.frac](Z|+00:00)". */
void cv_test_assert_time(const char *t);

/* ---- HTTP through the stack's gateway ---------------------------------- */

/* Where escalation plans are recorded (docs/api.md). */
#define CV_TEST_PLAN_PATH                                                      \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery/recovery-escalation-plan"

/* s->base_url + path, in a static buffer (overwritten by the next call). */
const char *cv_test_url(const cv_test_stack *s, const char *path);

/*
 * Sends a request to the stack's gateway (cv_http_request's arguments)
 * and checks what every answer must be: it arrived, it carries an
 * X-Request-Id, and it is not a 5xx. Free r with cv_http_response_free.
 */
void cv_test_request(const cv_test_stack *s, const char *method,
                     const char *path, const char *ctype, const char *body,
                     const char *const *headers, cv_http_response *r);

/* cv_test_request of a POST with a JSON body. */
void cv_test_post_json(const cv_test_stack *s, const char *path,
                       const char *body, cv_http_response *r);

/* Records a plan from a JSON body (POST CV_TEST_PLAN_PATH, which must
 * answer 201). Returns its plan_id; the caller frees it with free(). */
char *cv_test_record_plan_http(const cv_test_stack *s, const char *body);

/* cv_test_request (no extra headers) that must answer status with a JSON
 * object body. */
void cv_test_request_json(const cv_test_stack *s, const char *method,
                          const char *path, const char *body, long status,
                          cv_http_response *r);

/*
 * Checks an error answer: status; Content-Type application/json; a JSON
 * object body with a non-empty detail and code and request_id equal to the
 * X-Request-Id header. code is compared exactly unless NULL; detail
 * exactly, or (when it starts with '~') must contain the rest, unless
 * NULL.
 */
void cv_test_assert_error(const cv_http_response *r, long status,
                          const char *code, const char *detail);

/*
 * A stored record's answer: status 201 (else fails with the body), a JSON
 * body with the record object under `key`, a "metadata" object when meta
 * is not NULL (into *meta), and no actor (the test gateway is a sandbox).
 * Returns the record.
 */
json_t *cv_test_assert_created(const cv_http_response *r, const char *key,
                               json_t **meta);

/* Sends a request that must be rejected as cv_test_assert_error checks
 * and must store nothing (cv_test_counts_unchanged). */
void cv_test_reject(const cv_test_stack *s, const char *method,
                    const char *path, const char *ctype, const char *body,
                    long status, const char *code, const char *detail);

/* cv_test_reject of a JSON POST refused with 400 INVALID_ARGUMENT. */
void cv_test_reject_400(const cv_test_stack *s, const char *path,
                        const char *body, const char *detail);

/* ---- the store ----------------------------------------------------------- */

/* A connection of its own to cv_test_database_url() (the owner when
 * set); fails the test when it cannot connect. Close with PQfinish. */
PGconn *cv_test_db_connect(void);

/* Runs sql (at most one text parameter, may be NULL) on conn and
 * requires success; fails naming the statement and the server's error. */
void cv_test_db_exec(PGconn *conn, const char *sql, const char *param);

/* The first column of the first row of sql (at most one parameter) on
 * conn, as a long; fails the test when there is none. Cheaper than
 * cv_test_count in a polling loop (no new connection each time). */
long cv_test_db_count(PGconn *conn, const char *sql, const char *param);

/* cv_test_db_scalar (sql with at most one parameter), failing the test
 * when the query fails. */
long cv_test_count(const char *sql, const char *param);

/* Row counts of every table of the store (db/migrations). */
typedef struct cv_test_counts {
    long plans;       /* escalation_plans */
    long routes;      /* plan_routes */
    long acks;        /* acknowledgements */
    long current;     /* ack_current */
    long deliveries;  /* delivery_attempts */
    long retry_plans; /* retry_plans */
    long decisions;   /* retry_decisions */
    long schedules;   /* report_schedules */
    long runs;        /* report_runs */
    long reports;     /* executive_reports */
    long idem_keys;   /* idempotency_keys */
    long events;      /* evidence_events */
} cv_test_counts;

/* Counts every table in one statement (one snapshot). */
void cv_test_counts_snapshot(cv_test_counts *c);

/* Counts again and fails, naming `what` and each table that changed, when
 * any count differs from before. Only meaningful while nothing else
 * writes: ctest runs the integration and e2e tests serially. */
void cv_test_counts_unchanged(const cv_test_counts *before, const char *what);

/* ---- RPC ------------------------------------------------------------------
 */

/* Fails the test with the error text when rv is not 0 (an RPC, or any
 * call that fills a cv_error). */
#define CV_TEST_PASS(rv, err)                                                  \
    do {                                                                       \
        int cv_test_rv_ = (rv);                                                \
        if (cv_test_rv_ != 0)                                                  \
            fail_msg("failed with code %d: %s", cv_test_rv_, (err).msg);       \
    } while (0)

/* Calls "<service>.Health" and asserts the service names itself, is up
 * and reaches its database. */
void cv_test_assert_health(cv_rpc_client *cli, const char *service);

/* Calls method and asserts it fails with exactly code and msg, without a
 * reply, storing nothing (cv_test_counts_unchanged). */
void cv_test_rpc_expect_error(cv_rpc_client *cli, const char *method,
                              const ProtobufCMessage *req,
                              const ProtobufCMessageDescriptor *reply_desc,
                              int code, const char *msg);

/*
 * ack.RecordPlan of the n routes (as given: fields not set stay unset)
 * with generated_by. Returns 0 with *reply (free with
 * protobuf_c_message_free_unpacked), or the call's code with err set.
 */
int cv_test_record_plan_call(cv_rpc_client *cli, const char *generated_by,
                             Cv__EscalationRoute *routes, size_t n,
                             const cv_rpc_call_opts *opts,
                             Cv__RecordPlanReply **reply, cv_error *err);

/* cv_test_record_plan_call that must succeed with a plan. Returns the
 * reply; free it with protobuf_c_message_free_unpacked. */
Cv__RecordPlanReply *cv_test_record_plan_rpc(cv_rpc_client *cli,
                                             const char *generated_by,
                                             Cv__EscalationRoute *routes,
                                             size_t n,
                                             const cv_rpc_call_opts *opts);

/*
 * ack.Acknowledge of (plan_id, provider) by `by` with state (a
 * Cv__AckState; 0: not given). Returns 0 with *reply (free with
 * protobuf_c_message_free_unpacked; reply NULL: freed here), or the call's
 * code with err set.
 */
int cv_test_ack_call(cv_rpc_client *cli, const char *plan_id,
                     const char *provider, const char *by, int state,
                     const cv_rpc_call_opts *opts, Cv__AcknowledgeReply **reply,
                     cv_error *err);

/* cv_test_ack_call that must succeed with an acknowledgement (reply as
 * there). */
void cv_test_ack_rpc(cv_rpc_client *cli, const char *plan_id,
                     const char *provider, const char *by, int state,
                     const cv_rpc_call_opts *opts,
                     Cv__AcknowledgeReply **reply);

/*
 * A record as metadata embeds it (issue 11, item 5): `copy` holds the
 * record's keys with the record's values, at every depth, except the
 * key paths in `ours` (NULL-terminated, e.g. "redaction_count",
 * "retry_decisions[].acknowledgement_state"), which the record has and
 * the copy must not. Fails naming the first path that differs.
 */
void cv_test_assert_embedded(json_t *copy, json_t *record,
                             const char *const *ours);

#endif
