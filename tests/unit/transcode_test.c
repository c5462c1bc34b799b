/*
 * transcode_test.c -- unit tests of the JSON <-> protobuf-c transcoder
 * (lib/cv_transcode.c), one cmocka group.
 *
 * Most tests use the real CAVRA messages. The repo's protos use only a few
 * field types, so the file also carries a hand-written descriptor,
 * cvtest.AllTypes, laid out exactly as protoc-c would generate it, with
 * every scalar type, repeated scalars, a required field, a string with a
 * default, a oneof, a recursive child and a second enum. Run it directly
 * or through ctest (label `unit`); build with CAVRA_SANITIZE=ON to check
 * that every error path frees what it built.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ack.pb-c.h"
#include "common.pb-c.h"
#include "report.pb-c.h"
#include "retry.pb-c.h"
#include "rpc.pb-c.h"

#include "cv_error.h"
#include "cv_transcode.h"

/* ---- cvtest.RecoveryPhase: an enum whose names contain '_' ------------ */

static const ProtobufCEnumValue transcode_phase_values[] = {
    {"RECOVERY_PHASE_UNSPECIFIED", "CVTEST__RECOVERY_PHASE_UNSPECIFIED", 0},
    {"RECOVERY_PHASE_IN_PROGRESS", "CVTEST__RECOVERY_PHASE_IN_PROGRESS", 1},
    {"RECOVERY_PHASE_DONE", "CVTEST__RECOVERY_PHASE_DONE", 2},
};

static const ProtobufCEnumValueIndex transcode_phase_by_name[] = {
    {"RECOVERY_PHASE_DONE", 2},
    {"RECOVERY_PHASE_IN_PROGRESS", 1},
    {"RECOVERY_PHASE_UNSPECIFIED", 0},
};

static const ProtobufCIntRange transcode_phase_ranges[] = {{0, 0}, {0, 3}};

static const ProtobufCEnumDescriptor transcode_phase_descriptor = {
    PROTOBUF_C__ENUM_DESCRIPTOR_MAGIC,
    "cvtest.RecoveryPhase",
    "RecoveryPhase",
    "Cvtest__RecoveryPhase",
    "cvtest",
    3,
    transcode_phase_values,
    3,
    transcode_phase_by_name,
    1,
    transcode_phase_ranges,
    NULL,
    NULL,
    NULL,
    NULL,
};

/* cvtest.HTTPCode: an acronym in the enum name ("HTTP_CODE_" prefix). */
static const ProtobufCEnumValue transcode_http_values[] = {
    {"HTTP_CODE_UNSPECIFIED", "CVTEST__HTTP_CODE_UNSPECIFIED", 0},
    {"HTTP_CODE_NOT_FOUND", "CVTEST__HTTP_CODE_NOT_FOUND", 404},
};

static const ProtobufCEnumValueIndex transcode_http_by_name[] = {
    {"HTTP_CODE_NOT_FOUND", 1},
    {"HTTP_CODE_UNSPECIFIED", 0},
};

static const ProtobufCIntRange transcode_http_ranges[] = {
    {0, 0}, {404, 1}, {0, 2}};

static const ProtobufCEnumDescriptor transcode_http_descriptor = {
    PROTOBUF_C__ENUM_DESCRIPTOR_MAGIC,
    "cvtest.HTTPCode",
    "HTTPCode",
    "Cvtest__HTTPCode",
    "cvtest",
    2,
    transcode_http_values,
    2,
    transcode_http_by_name,
    2,
    transcode_http_ranges,
    NULL,
    NULL,
    NULL,
    NULL,
};

/* ---- cvtest.AllTypes ------------------------------------------------- */

typedef struct transcode_all {
    ProtobufCMessage base;
    protobuf_c_boolean has_i32;
    int32_t i32;
    protobuf_c_boolean has_u32;
    uint32_t u32;
    protobuf_c_boolean has_s32;
    int32_t s32;
    protobuf_c_boolean has_f32;
    uint32_t f32;
    protobuf_c_boolean has_sf32;
    int32_t sf32;
    protobuf_c_boolean has_i64;
    int64_t i64;
    protobuf_c_boolean has_u64;
    uint64_t u64;
    protobuf_c_boolean has_s64;
    int64_t s64;
    protobuf_c_boolean has_f64;
    uint64_t f64;
    protobuf_c_boolean has_sf64;
    int64_t sf64;
    protobuf_c_boolean has_fl;
    float fl;
    protobuf_c_boolean has_db;
    double db;
    protobuf_c_boolean has_b;
    protobuf_c_boolean b;
    char *s;
    protobuf_c_boolean has_by;
    ProtobufCBinaryData by;
    protobuf_c_boolean has_state;
    Cv__AckState state;
    struct transcode_all *child;
    size_t n_rb;
    protobuf_c_boolean *rb;
    size_t n_rd;
    double *rd;
    size_t n_rstate;
    Cv__AckState *rstate;
    size_t n_rby;
    ProtobufCBinaryData *rby;
    size_t n_ru64;
    uint64_t *ru64;
    char *sdef;
    int32_t req;
    uint32_t pick_case;
    union {
        char *one_a;
        int64_t one_b;
    };
    protobuf_c_boolean has_phase;
    int phase;
    size_t n_rraw;
    Cv__RawJson **rraw;
} transcode_all;

static char transcode_sdef_default[] = "dflt";

static const ProtobufCMessageDescriptor transcode_all_descriptor;

static void
transcode_all_init(ProtobufCMessage *msg)
{
    transcode_all *m = (transcode_all *)msg;

    memset(m, 0, sizeof(*m));
    m->base.descriptor = &transcode_all_descriptor;
    m->sdef = transcode_sdef_default;
}

#define TRANSCODE_OPT(nm, tag, ty)                                             \
    {                                                                          \
        .name = #nm, .id = tag, .label = PROTOBUF_C_LABEL_OPTIONAL,            \
        .type = PROTOBUF_C_TYPE_##ty,                                          \
        .quantifier_offset = offsetof(transcode_all, has_##nm),                \
        .offset = offsetof(transcode_all, nm)                                  \
    }
#define TRANSCODE_REP(nm, tag, ty, desc)                                       \
    {                                                                          \
        .name = #nm, .id = tag, .label = PROTOBUF_C_LABEL_REPEATED,            \
        .type = PROTOBUF_C_TYPE_##ty,                                          \
        .quantifier_offset = offsetof(transcode_all, n_##nm),                  \
        .offset = offsetof(transcode_all, nm), .descriptor = desc              \
    }

static const ProtobufCFieldDescriptor transcode_all_fields[] = {
    TRANSCODE_OPT(i32, 1, INT32),
    TRANSCODE_OPT(u32, 2, UINT32),
    TRANSCODE_OPT(s32, 3, SINT32),
    TRANSCODE_OPT(f32, 4, FIXED32),
    TRANSCODE_OPT(sf32, 5, SFIXED32),
    TRANSCODE_OPT(i64, 6, INT64),
    TRANSCODE_OPT(u64, 7, UINT64),
    TRANSCODE_OPT(s64, 8, SINT64),
    TRANSCODE_OPT(f64, 9, FIXED64),
    TRANSCODE_OPT(sf64, 10, SFIXED64),
    TRANSCODE_OPT(fl, 11, FLOAT),
    TRANSCODE_OPT(db, 12, DOUBLE),
    TRANSCODE_OPT(b, 13, BOOL),
    {.name = "s",
     .id = 14,
     .label = PROTOBUF_C_LABEL_OPTIONAL,
     .type = PROTOBUF_C_TYPE_STRING,
     .offset = offsetof(transcode_all, s)},
    TRANSCODE_OPT(by, 15, BYTES),
    {.name = "state",
     .id = 16,
     .label = PROTOBUF_C_LABEL_OPTIONAL,
     .type = PROTOBUF_C_TYPE_ENUM,
     .quantifier_offset = offsetof(transcode_all, has_state),
     .offset = offsetof(transcode_all, state),
     .descriptor = &cv__ack_state__descriptor},
    {.name = "child",
     .id = 17,
     .label = PROTOBUF_C_LABEL_OPTIONAL,
     .type = PROTOBUF_C_TYPE_MESSAGE,
     .offset = offsetof(transcode_all, child),
     .descriptor = &transcode_all_descriptor},
    TRANSCODE_REP(rb, 18, BOOL, NULL),
    TRANSCODE_REP(rd, 19, DOUBLE, NULL),
    TRANSCODE_REP(rstate, 20, ENUM, &cv__ack_state__descriptor),
    TRANSCODE_REP(rby, 21, BYTES, NULL),
    TRANSCODE_REP(ru64, 22, UINT64, NULL),
    {.name = "sdef",
     .id = 23,
     .label = PROTOBUF_C_LABEL_OPTIONAL,
     .type = PROTOBUF_C_TYPE_STRING,
     .offset = offsetof(transcode_all, sdef),
     .default_value = transcode_sdef_default},
    {.name = "req",
     .id = 24,
     .label = PROTOBUF_C_LABEL_REQUIRED,
     .type = PROTOBUF_C_TYPE_INT32,
     .offset = offsetof(transcode_all, req)},
    {.name = "one_a",
     .id = 25,
     .label = PROTOBUF_C_LABEL_OPTIONAL,
     .type = PROTOBUF_C_TYPE_STRING,
     .quantifier_offset = offsetof(transcode_all, pick_case),
     .offset = offsetof(transcode_all, one_a),
     .flags = PROTOBUF_C_FIELD_FLAG_ONEOF},
    {.name = "one_b",
     .id = 26,
     .label = PROTOBUF_C_LABEL_OPTIONAL,
     .type = PROTOBUF_C_TYPE_INT64,
     .quantifier_offset = offsetof(transcode_all, pick_case),
     .offset = offsetof(transcode_all, one_b),
     .flags = PROTOBUF_C_FIELD_FLAG_ONEOF},
    {.name = "phase",
     .id = 27,
     .label = PROTOBUF_C_LABEL_OPTIONAL,
     .type = PROTOBUF_C_TYPE_ENUM,
     .quantifier_offset = offsetof(transcode_all, has_phase),
     .offset = offsetof(transcode_all, phase),
     .descriptor = &transcode_phase_descriptor},
    TRANSCODE_REP(rraw, 28, MESSAGE, &cv__raw_json__descriptor),
};

/* Indices of transcode_all_fields sorted by name, for lookups by name. */
static const unsigned transcode_all_by_name[] = {
    12, 14, 16, 11, 3,  8,  10, 0, 5,  24, 25, 26, 17, 20,
    18, 23, 27, 19, 21, 13, 2,  7, 22, 4,  9,  15, 1,  6,
};

static const ProtobufCIntRange transcode_all_ranges[] = {{1, 0}, {0, 28}};

static const ProtobufCMessageDescriptor transcode_all_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    "cvtest.AllTypes",
    "AllTypes",
    "Cvtest__AllTypes",
    "cvtest",
    sizeof(transcode_all),
    28,
    transcode_all_fields,
    transcode_all_by_name,
    1,
    transcode_all_ranges,
    transcode_all_init,
    NULL,
    NULL,
    NULL,
};

/* ---- helpers ---------------------------------------------------------- */

/* Parses text into a new message or fails the test with our error text. */
static ProtobufCMessage *
transcode_ok(const ProtobufCMessageDescriptor *desc, const char *text)
{
    ProtobufCMessage *msg = NULL;
    cv_error err;

    cv_error_clear(&err);
    if (cv_json_text_to_message(desc, text, strlen(text), &msg, &err) != 0)
        fail_msg("rejected %s: %s", text, err.msg);
    assert_non_null(msg);
    assert_ptr_equal(msg->descriptor, desc);
    return msg;
}

/* Expects text to be rejected as INVALID_ARGUMENT with exactly want. */
static void
transcode_fails(const ProtobufCMessageDescriptor *desc, const char *text,
                const char *want)
{
    ProtobufCMessage *msg = (ProtobufCMessage *)&msg; /* must become NULL */
    cv_error err;
    int rv;

    cv_error_clear(&err);
    rv = cv_json_text_to_message(desc, text, strlen(text), &msg, &err);
    if (rv == 0) {
        protobuf_c_message_free_unpacked(msg, NULL);
        fail_msg("accepted %s (wanted \"%s\")", text, want);
    }
    assert_int_equal(rv, CV_INVALID_ARGUMENT);
    assert_int_equal(err.code, CV_INVALID_ARGUMENT);
    assert_null(msg);
    assert_string_equal(err.msg, want);
}

/* Compact JSON text of msg, compared with want, then freed. */
static void
transcode_text_is(const ProtobufCMessage *msg, const char *want)
{
    char *text = cv_message_to_json_text(msg, JSON_COMPACT);

    assert_non_null(text);
    assert_string_equal(text, want);
    free(text);
}

/* Wire bytes of a message; caller frees. */
static uint8_t *
transcode_pack(const ProtobufCMessage *msg, size_t *len)
{
    uint8_t *buf;

    *len = protobuf_c_message_get_packed_size(msg);
    buf = malloc(*len + 1);
    assert_non_null(buf);
    assert_int_equal(protobuf_c_message_pack(msg, buf), *len);
    return buf;
}

/* msg -> JSON text -> message must give the same wire bytes. */
static void
transcode_round_trip(const ProtobufCMessage *msg)
{
    ProtobufCMessage *back;
    char *text;
    uint8_t *a, *b;
    size_t alen, blen;

    text = cv_message_to_json_text(msg, 0);
    assert_non_null(text);
    back = transcode_ok(msg->descriptor, text);
    assert_true(protobuf_c_message_check(back));
    a = transcode_pack(msg, &alen);
    b = transcode_pack(back, &blen);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    free(a);
    free(b);
    free(text);
    protobuf_c_message_free_unpacked(back, NULL);
}

/* A JSON body of `levels` AllTypes objects nested through `child`. */
static char *
transcode_nested(int levels)
{
    size_t len = (size_t)levels * 24 + 32;
    char *buf = malloc(len);
    size_t o = 0;

    assert_non_null(buf);
    for (int i = 0; i < levels; i++)
        o += (size_t)snprintf(buf + o, len - o, "{\"req\":1,\"child\":");
    o += (size_t)snprintf(buf + o, len - o, "{\"req\":1}");
    for (int i = 0; i < levels; i++)
        buf[o++] = '}';
    buf[o] = '\0';
    return buf;
}

/* ---- tests ------------------------------------------------------------ */

static void
test_transcode_message_new(void **state)
{
    Cv__AcknowledgeRequest *req;
    transcode_all *all;

    (void)state;
    req = (Cv__AcknowledgeRequest *)cv_message_new(
        &cv__acknowledge_request__descriptor);
    assert_non_null(req);
    assert_ptr_equal(req->base.descriptor,
                     &cv__acknowledge_request__descriptor);
    assert_null(req->plan_id);
    assert_false(req->has_acknowledgement_state);
    protobuf_c_message_free_unpacked(&req->base, NULL);

    /* message_init runs: the default string is in place. */
    all = (transcode_all *)cv_message_new(&transcode_all_descriptor);
    assert_non_null(all);
    assert_ptr_equal(all->sdef, transcode_sdef_default);
    protobuf_c_message_free_unpacked(&all->base, NULL);

    assert_null(cv_message_new(NULL));
}

static void
test_transcode_scalar_fields(void **state)
{
    Cv__RecordDeliveryRequest *r;

    (void)state;
    r = (Cv__RecordDeliveryRequest *)transcode_ok(
        &cv__record_delivery_request__descriptor,
        "{\"plan_id\":\"plan-1\",\"provider\":\"pagerduty\",\"success\":false,"
        "\"status_code\":503,\"attempt_count\":3,"
        "\"started_at\":\"2024-01-01T00:00:00Z\",\"error\":\"timeout\"}");
    assert_string_equal(r->plan_id, "plan-1");
    assert_string_equal(r->provider, "pagerduty");
    /* false is a value: has_ is set. */
    assert_true(r->has_success);
    assert_false(r->success);
    assert_true(r->has_status_code);
    assert_int_equal(r->status_code, 503);
    assert_true(r->has_attempt_count);
    assert_int_equal(r->attempt_count, 3);
    assert_string_equal(r->started_at, "2024-01-01T00:00:00Z");
    assert_null(r->completed_at);
    assert_string_equal(r->error, "timeout");
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void
test_transcode_all_types_input(void **state)
{
    transcode_all *m;

    (void)state;
    m = (transcode_all *)transcode_ok(
        &transcode_all_descriptor,
        "{\"i32\":-5,\"u32\":4294967295,\"s32\":-2147483648,\"f32\":7,"
        "\"sf32\":-8,\"i64\":-9007199254740993,"
        "\"u64\":\"18446744073709551615\","
        "\"s64\":\"-9223372036854775808\",\"f64\":\"9223372036854775808\","
        "\"sf64\":-1,\"fl\":0.5,\"db\":-2.25,\"b\":true,\"s\":\"h\\u00e9llo\","
        "\"by\":\"AAEC/w==\",\"state\":\"escalated\","
        "\"child\":{\"req\":2,\"s\":\"kid\"},\"rb\":[true,false],"
        "\"rd\":[1,2.5],\"rstate\":[\"accepted\",\"dismissed\"],"
        "\"rby\":[\"\",\"aGk=\"],\"ru64\":[0,\"18446744073709551615\"],"
        "\"sdef\":\"set\",\"req\":1,\"one_b\":\"42\",\"phase\":\"done\","
        "\"rraw\":[null,{\"k\":[1]}]}");
    assert_true(m->has_i32 && m->has_u32 && m->has_s32 && m->has_f32 &&
                m->has_sf32 && m->has_i64 && m->has_u64 && m->has_s64 &&
                m->has_f64 && m->has_sf64 && m->has_fl && m->has_db &&
                m->has_b && m->has_by && m->has_state && m->has_phase);
    assert_int_equal(m->i32, -5);
    assert_true(m->u32 == UINT32_MAX);
    assert_true(m->s32 == INT32_MIN);
    assert_int_equal(m->f32, 7);
    assert_int_equal(m->sf32, -8);
    assert_true(m->i64 == -9007199254740993LL);
    assert_true(m->u64 == UINT64_MAX);
    assert_true(m->s64 == INT64_MIN);
    assert_true(m->f64 == 9223372036854775808ULL);
    assert_true(m->sf64 == -1);
    assert_true(m->fl == 0.5f);
    assert_true(m->db == -2.25);
    assert_true(m->b);
    assert_string_equal(m->s, "h\xc3\xa9llo");
    assert_int_equal(m->by.len, 4);
    assert_memory_equal(m->by.data, "\x00\x01\x02\xff", 4);
    assert_int_equal(m->state, CV__ACK_STATE__ACK_STATE_ESCALATED);
    assert_non_null(m->child);
    assert_int_equal(m->child->req, 2);
    assert_string_equal(m->child->s, "kid");
    assert_null(m->child->child);
    assert_int_equal(m->n_rb, 2);
    assert_true(m->rb[0] && !m->rb[1]);
    assert_int_equal(m->n_rd, 2);
    assert_true(m->rd[0] == 1.0 && m->rd[1] == 2.5);
    assert_int_equal(m->n_rstate, 2);
    assert_int_equal(m->rstate[0], CV__ACK_STATE__ACK_STATE_ACCEPTED);
    assert_int_equal(m->rstate[1], CV__ACK_STATE__ACK_STATE_DISMISSED);
    assert_int_equal(m->n_rby, 2);
    assert_int_equal(m->rby[0].len, 0);
    assert_int_equal(m->rby[1].len, 2);
    assert_memory_equal(m->rby[1].data, "hi", 2);
    assert_int_equal(m->n_ru64, 2);
    assert_true(m->ru64[0] == 0 && m->ru64[1] == UINT64_MAX);
    assert_string_equal(m->sdef, "set");
    assert_int_equal(m->req, 1);
    assert_int_equal(m->pick_case, 26);
    assert_true(m->one_b == 42);
    assert_int_equal(m->phase, 2);
    assert_int_equal(m->n_rraw, 2);
    /* null inside an array of RawJson is the JSON value null. */
    assert_string_equal(m->rraw[0]->json, "null");
    assert_string_equal(m->rraw[1]->json, "{\"k\":[1]}");
    assert_true(protobuf_c_message_check(&m->base));
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void
test_transcode_all_types_output(void **state)
{
    ProtobufCMessage *m;

    (void)state;
    m = transcode_ok(
        &transcode_all_descriptor,
        "{\"rraw\":[null,{\"k\":[1]}],\"phase\":\"in-progress\","
        "\"one_b\":42,\"req\":1,\"sdef\":\"set\","
        "\"ru64\":[0,\"18446744073709551615\"],\"rby\":[\"\",\"aGk=\"],"
        "\"rstate\":[\"accepted\",\"dismissed\"],\"rd\":[1,2.5],"
        "\"rb\":[true,false],\"state\":\"escalated\",\"by\":\"AAEC/w==\","
        "\"s\":\"h\\u00e9llo\",\"b\":true,\"db\":-2.25,\"fl\":0.1,"
        "\"sf64\":-1,\"f64\":\"9223372036854775808\","
        "\"s64\":\"-9223372036854775808\","
        "\"u64\":\"18446744073709551615\",\"i64\":-9007199254740993,"
        "\"sf32\":-8,\"f32\":7,\"s32\":-2147483648,\"u32\":4294967295,"
        "\"i32\":-5}");
    /* Descriptor order whatever the input order; uint64 beyond int64 as a
     * string; doubles as reals. The float 0.1f is written as the double
     * 0.1 (jansson prints 17 digits), not as 0.100000001490116. */
    transcode_text_is(
        m, "{\"i32\":-5,\"u32\":4294967295,\"s32\":-2147483648,\"f32\":7,"
           "\"sf32\":-8,\"i64\":-9007199254740993,"
           "\"u64\":\"18446744073709551615\","
           "\"s64\":-9223372036854775808,\"f64\":\"9223372036854775808\","
           "\"sf64\":-1,\"fl\":0.10000000000000001,\"db\":-2.25,"
           "\"b\":true,\"s\":\"h\xc3\xa9llo\",\"by\":\"AAEC/"
           "w==\",\"state\":\"escalated\","
           "\"child\":null,\"rb\":[true,false],\"rd\":[1.0,2.5],"
           "\"rstate\":[\"accepted\",\"dismissed\"],\"rby\":[\"\",\"aGk=\"],"
           "\"ru64\":[0,\"18446744073709551615\"],\"sdef\":\"set\","
           "\"req\":1,\"one_a\":null,\"one_b\":42,\"phase\":\"in_progress\","
           "\"rraw\":[null,{\"k\":[1]}]}");
    protobuf_c_message_free_unpacked(m, NULL);
}

static void
test_transcode_output_every_field_in_order(void **state)
{
    Cv__EscalationRoute route = CV__ESCALATION_ROUTE__INIT;
    Cv__Actor actor = CV__ACTOR__INIT;
    char *text;

    (void)state;
    /* Unset optional fields are null, never omitted. */
    transcode_text_is(
        &route.base,
        "{\"provider\":null,\"category\":null,\"severity\":null,"
        "\"reason\":null,\"recommended_action\":null,\"playbook_id\":null,"
        "\"closure_state\":null,\"age_minutes\":null,"
        "\"failure_count\":null,\"slo_status\":null,\"slo_breached\":null}");
    /* An empty repeated field is []. */
    transcode_text_is(&actor.base,
                      "{\"actor\":null,\"subject\":null,\"roles\":[]}");

    route.provider = "s3";
    route.has_slo_breached = 1;
    route.slo_breached = 0;
    route.has_age_minutes = 1;
    route.age_minutes = 0;
    transcode_text_is(
        &route.base,
        "{\"provider\":\"s3\",\"category\":null,\"severity\":null,"
        "\"reason\":null,\"recommended_action\":null,\"playbook_id\":null,"
        "\"closure_state\":null,\"age_minutes\":0,"
        "\"failure_count\":null,\"slo_status\":null,\"slo_breached\":false}");

    /* The canonical form sorts keys and has no spaces. */
    text = cv_message_to_json_text(&actor.base, CV_JSON_CANONICAL);
    assert_non_null(text);
    assert_string_equal(text, "{\"actor\":null,\"roles\":[],\"subject\":null}");
    free(text);
    assert_null(cv_message_to_json(NULL));
    assert_null(cv_message_to_json_text(NULL, 0));
}

static void
test_transcode_nested_message_and_path(void **state)
{
    Cv__RetryPlanRequest *r;

    (void)state;
    r = (Cv__RetryPlanRequest *)transcode_ok(
        &cv__retry_plan_request__descriptor,
        "{\"plan_id\":\"p\",\"retry_policy\":{\"max_retry_attempts\":4,"
        "\"allow_immediate_retry\":true,\"retry_delay_minutes\":7,"
        "\"backoff_multiplier\":1.5}}");
    assert_non_null(r->retry_policy);
    assert_true(r->retry_policy->has_max_retry_attempts);
    assert_int_equal(r->retry_policy->max_retry_attempts, 4);
    assert_true(r->retry_policy->allow_immediate_retry);
    assert_true(r->retry_policy->retry_delay_minutes == 7.0);
    assert_true(r->retry_policy->backoff_multiplier == 1.5);
    assert_false(r->retry_policy->has_max_retries);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* An empty object is a present, empty message. */
    r = (Cv__RetryPlanRequest *)transcode_ok(
        &cv__retry_plan_request__descriptor, "{\"retry_policy\":{}}");
    assert_non_null(r->retry_policy);
    assert_false(r->retry_policy->has_max_retry_attempts);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    transcode_fails(&cv__retry_plan_request__descriptor,
                    "{\"retry_policy\":{\"max_retry_attempts\":\"x\"}}",
                    "retry_policy.max_retry_attempts must be an integer");
    transcode_fails(&cv__retry_plan_request__descriptor,
                    "{\"retry_policy\":{\"backoff_multiplier\":\"2\"}}",
                    "retry_policy.backoff_multiplier must be a number");
    transcode_fails(&cv__retry_plan_request__descriptor,
                    "{\"retry_policy\":[]}", "retry_policy must be an object");
}

static void
test_transcode_repeated_messages(void **state)
{
    Cv__RecordPlanRequest *r;

    (void)state;
    r = (Cv__RecordPlanRequest *)transcode_ok(
        &cv__record_plan_request__descriptor,
        "{\"generated_by\":\"ops\",\"escalation_routes\":["
        "{\"provider\":\"a\",\"severity\":\"critical\",\"age_minutes\":5},"
        "{\"provider\":\"b\",\"slo_breached\":true},"
        "{\"provider\":\"c\",\"failure_count\":2}]}");
    assert_int_equal(r->n_escalation_routes, 3);
    assert_string_equal(r->escalation_routes[0]->provider, "a");
    assert_int_equal(r->escalation_routes[0]->severity,
                     CV__SEVERITY__SEVERITY_CRITICAL);
    assert_int_equal(r->escalation_routes[0]->age_minutes, 5);
    assert_string_equal(r->escalation_routes[1]->provider, "b");
    assert_true(r->escalation_routes[1]->has_slo_breached);
    assert_true(r->escalation_routes[1]->slo_breached);
    assert_string_equal(r->escalation_routes[2]->provider, "c");
    assert_int_equal(r->escalation_routes[2]->failure_count, 2);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* Errors name the element; the first two elements are freed. */
    transcode_fails(&cv__record_plan_request__descriptor,
                    "{\"escalation_routes\":[{\"provider\":\"a\"},"
                    "{\"provider\":\"b\"},{\"provider\":7}]}",
                    "escalation_routes[2].provider must be a string");
    transcode_fails(&cv__record_plan_request__descriptor,
                    "{\"escalation_routes\":[{\"reason\":\"x\"},"
                    "{\"age_minutes\":1.5}]}",
                    "escalation_routes[1].age_minutes must be an integer");
    transcode_fails(&cv__record_plan_request__descriptor,
                    "{\"escalation_routes\":[{},null]}",
                    "escalation_routes[1] must be an object");
    transcode_fails(&cv__record_plan_request__descriptor,
                    "{\"escalation_routes\":{\"provider\":\"a\"}}",
                    "escalation_routes must be an array");

    /* Repeated strings and int64s. */
    transcode_fails(&cv__actor__descriptor, "{\"roles\":[\"a\",1]}",
                    "roles[1] must be a string");
    r = (Cv__RecordPlanRequest *)transcode_ok(
        &cv__record_plan_request__descriptor, "{\"escalation_routes\":[]}");
    assert_int_equal(r->n_escalation_routes, 0);
    assert_null(r->escalation_routes);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void
test_transcode_int64_beyond_double_precision(void **state)
{
    Cv__ListEvidenceRequest *r;
    json_t *j;
    char *text;

    (void)state;
    /* 2^53 + 1 cannot be a double; it must survive exactly both ways. */
    r = (Cv__ListEvidenceRequest *)transcode_ok(
        &cv__list_evidence_request__descriptor, "{\"limit\":9007199254740993}");
    assert_true(r->limit == 9007199254740993LL);
    j = cv_message_to_json(&r->base);
    assert_non_null(j);
    assert_true(json_is_integer(json_object_get(j, "limit")));
    assert_true(json_integer_value(json_object_get(j, "limit")) ==
                9007199254740993LL);
    json_decref(j);
    text = cv_message_to_json_text(&r->base, JSON_COMPACT);
    assert_non_null(strstr(text, "\"limit\":9007199254740993"));
    free(text);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* Decimal strings reach the full int64 range. */
    r = (Cv__ListEvidenceRequest *)transcode_ok(
        &cv__list_evidence_request__descriptor,
        "{\"limit\":\"9223372036854775807\"}");
    assert_true(r->limit == INT64_MAX);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    r = (Cv__ListEvidenceRequest *)transcode_ok(
        &cv__list_evidence_request__descriptor,
        "{\"limit\":\"-9223372036854775808\"}");
    assert_true(r->limit == INT64_MIN);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    r = (Cv__ListEvidenceRequest *)transcode_ok(
        &cv__list_evidence_request__descriptor,
        "{\"limit\":-9223372036854775808}");
    assert_true(r->limit == INT64_MIN);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    transcode_fails(&cv__list_evidence_request__descriptor,
                    "{\"limit\":\"9223372036854775808\"}",
                    "limit is out of range");
    transcode_fails(&cv__list_evidence_request__descriptor,
                    "{\"limit\":\"-9223372036854775809\"}",
                    "limit is out of range");
    transcode_fails(&cv__list_evidence_request__descriptor,
                    "{\"limit\":\"99999999999999999999999\"}",
                    "limit is out of range");
    transcode_fails(&cv__list_evidence_request__descriptor, "{\"limit\":1e19}",
                    "limit is out of range");
    /* A string must be a plain base-10 integer. */
    transcode_fails(&cv__list_evidence_request__descriptor,
                    "{\"limit\":\"5.0\"}", "limit must be an integer");
    transcode_fails(&cv__list_evidence_request__descriptor,
                    "{\"limit\":\" 5\"}", "limit must be an integer");
    transcode_fails(&cv__list_evidence_request__descriptor,
                    "{\"limit\":\"+5\"}", "limit must be an integer");
    transcode_fails(&cv__list_evidence_request__descriptor, "{\"limit\":\"\"}",
                    "limit must be an integer");
    transcode_fails(&cv__list_evidence_request__descriptor,
                    "{\"limit\":\"99999999999999999999x\"}",
                    "limit must be an integer");
}

static void
test_transcode_integer_rules(void **state)
{
    Cv__RpcReply *r;

    (void)state;
    /* An integral real is an integer; a fraction is not. */
    r = (Cv__RpcReply *)transcode_ok(&cv__rpc_reply__descriptor,
                                     "{\"code\":5.0}");
    assert_true(r->has_code);
    assert_int_equal(r->code, 5);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    r = (Cv__RpcReply *)transcode_ok(&cv__rpc_reply__descriptor,
                                     "{\"code\":-2147483648}");
    assert_true(r->code == INT32_MIN);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    transcode_fails(&cv__rpc_reply__descriptor, "{\"code\":5.5}",
                    "code must be an integer");
    /* Only 64-bit fields take the string form. */
    transcode_fails(&cv__rpc_reply__descriptor, "{\"code\":\"5\"}",
                    "code must be an integer");
    transcode_fails(&cv__rpc_reply__descriptor, "{\"code\":true}",
                    "code must be an integer");
    transcode_fails(&cv__rpc_reply__descriptor, "{\"code\":2147483648}",
                    "code is out of range");
    transcode_fails(&cv__rpc_reply__descriptor, "{\"code\":-2147483649}",
                    "code is out of range");
    transcode_fails(&cv__rpc_reply__descriptor, "{\"code\":1e300}",
                    "code is out of range");

    /* Unsigned and fixed-width types. */
    transcode_fails(&transcode_all_descriptor, "{\"req\":1,\"u32\":-1}",
                    "u32 is out of range");
    transcode_fails(&transcode_all_descriptor, "{\"req\":1,\"u32\":4294967296}",
                    "u32 is out of range");
    transcode_fails(&transcode_all_descriptor, "{\"req\":1,\"f32\":-1}",
                    "f32 is out of range");
    transcode_fails(&transcode_all_descriptor, "{\"req\":1,\"u64\":-1}",
                    "u64 is out of range");
    transcode_fails(&transcode_all_descriptor, "{\"req\":1,\"u64\":\"-1\"}",
                    "u64 is out of range");
    transcode_fails(&transcode_all_descriptor,
                    "{\"req\":1,\"u64\":\"18446744073709551616\"}",
                    "u64 is out of range");
    transcode_fails(&transcode_all_descriptor,
                    "{\"req\":1,\"sf32\":2147483648}", "sf32 is out of range");
    transcode_fails(&transcode_all_descriptor, "{\"req\":1,\"ru64\":[1,-2]}",
                    "ru64[1] is out of range");
    transcode_fails(&transcode_all_descriptor, "{\"req\":1,\"s32\":\"1\"}",
                    "s32 must be an integer");
}

static void
test_transcode_float_and_double(void **state)
{
    transcode_all *m;

    (void)state;
    /* Any JSON number, integer or real. */
    m = (transcode_all *)transcode_ok(&transcode_all_descriptor,
                                      "{\"req\":1,\"db\":3,\"fl\":-4}");
    assert_true(m->db == 3.0);
    assert_true(m->fl == -4.0f);
    transcode_text_is(&m->base,
                      "{\"i32\":null,\"u32\":null,\"s32\":null,\"f32\":null,"
                      "\"sf32\":null,\"i64\":null,\"u64\":null,\"s64\":null,"
                      "\"f64\":null,\"sf64\":null,\"fl\":-4.0,\"db\":3.0,"
                      "\"b\":null,\"s\":null,\"by\":null,\"state\":null,"
                      "\"child\":null,\"rb\":[],\"rd\":[],\"rstate\":[],"
                      "\"rby\":[],\"ru64\":[],\"sdef\":null,\"req\":1,"
                      "\"one_a\":null,\"one_b\":null,\"phase\":null,"
                      "\"rraw\":[]}");
    protobuf_c_message_free_unpacked(&m->base, NULL);

    transcode_fails(&transcode_all_descriptor, "{\"req\":1,\"db\":\"3\"}",
                    "db must be a number");
    transcode_fails(&transcode_all_descriptor, "{\"req\":1,\"db\":false}",
                    "db must be a number");
    transcode_fails(&transcode_all_descriptor, "{\"req\":1,\"fl\":1e39}",
                    "fl is out of range");
    transcode_fails(&transcode_all_descriptor, "{\"req\":1,\"rd\":[1,\"NaN\"]}",
                    "rd[1] must be a number");
}

static void
test_transcode_bool_strict(void **state)
{
    Cv__RetryPolicy *p;

    (void)state;
    p = (Cv__RetryPolicy *)transcode_ok(&cv__retry_policy__descriptor,
                                        "{\"allow_immediate_retry\":false}");
    assert_true(p->has_allow_immediate_retry);
    assert_false(p->allow_immediate_retry);
    protobuf_c_message_free_unpacked(&p->base, NULL);

    transcode_fails(&cv__retry_policy__descriptor,
                    "{\"allow_immediate_retry\":\"true\"}",
                    "allow_immediate_retry must be a boolean");
    transcode_fails(&cv__retry_policy__descriptor,
                    "{\"allow_immediate_retry\":1}",
                    "allow_immediate_retry must be a boolean");
    transcode_fails(&transcode_all_descriptor, "{\"req\":1,\"rb\":[true,0]}",
                    "rb[1] must be a boolean");
}

static void
test_transcode_enum_normalisation(void **state)
{
    static const char *const spellings[] = {
        "\"accepted\"",
        "\"ACCEPTED\"",
        "\" Accepted\\t\"",
        "\"\\naccepted \"",
    };
    Cv__AcknowledgeRequest *r;
    transcode_all *m;
    char body[128];

    (void)state;
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        snprintf(body, sizeof(body), "{\"acknowledgement_state\":%s}",
                 spellings[i]);
        r = (Cv__AcknowledgeRequest *)transcode_ok(
            &cv__acknowledge_request__descriptor, body);
        assert_true(r->has_acknowledgement_state);
        assert_int_equal(r->acknowledgement_state,
                         CV__ACK_STATE__ACK_STATE_ACCEPTED);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    /* '-' becomes '_' and the two-word enum prefix is stripped. */
    m = (transcode_all *)transcode_ok(
        &transcode_all_descriptor,
        "{\"req\":1,\"phase\":\" In-Progress \",\"rstate\":[\"Resolved\"]}");
    assert_int_equal(m->phase, 1);
    assert_int_equal(m->n_rstate, 1);
    assert_int_equal(m->rstate[0], CV__ACK_STATE__ACK_STATE_RESOLVED);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    m = (transcode_all *)transcode_ok(&transcode_all_descriptor,
                                      "{\"req\":1,\"phase\":\"in_progress\"}");
    assert_int_equal(m->phase, 1);
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void
test_transcode_enum_bad_value(void **state)
{
    static const char ack_err[] =
        "acknowledgement_state must be acknowledged, accepted, deferred, "
        "escalated, resolved, or dismissed";

    (void)state;
    transcode_fails(&cv__acknowledge_request__descriptor,
                    "{\"acknowledgement_state\":\"bogus\"}", ack_err);
    /* Value 0 / *_UNSPECIFIED is never a client's choice. */
    transcode_fails(&cv__acknowledge_request__descriptor,
                    "{\"acknowledgement_state\":\"unspecified\"}", ack_err);
    /* Only the short name, not the full proto name. */
    transcode_fails(&cv__acknowledge_request__descriptor,
                    "{\"acknowledgement_state\":\"ACK_STATE_ACCEPTED\"}",
                    ack_err);
    transcode_fails(&cv__acknowledge_request__descriptor,
                    "{\"acknowledgement_state\":\"\"}", ack_err);
    /* Two names: "a or b"; three: "a, b, or c". */
    transcode_fails(&transcode_all_descriptor,
                    "{\"req\":1,\"phase\":\"in progress\"}",
                    "phase must be in_progress or done");
    transcode_fails(&cv__retry_decision__descriptor, "{\"action\":\"later\"}",
                    "action must be retry, wait, or suppress");
    transcode_fails(&cv__plan_executive_summary__descriptor,
                    "{\"status\":\"red\"}",
                    "status must be healthy, warning, or critical");
}

static void
test_transcode_enum_null_and_non_string(void **state)
{
    static const char ack_err[] =
        "acknowledgement_state must be acknowledged, accepted, deferred, "
        "escalated, resolved, or dismissed";

    (void)state;
    /* Unlike other fields, null is not "not given" for an enum. */
    transcode_fails(&cv__acknowledge_request__descriptor,
                    "{\"acknowledgement_state\":null}", ack_err);
    transcode_fails(&cv__acknowledge_request__descriptor,
                    "{\"acknowledgement_state\":2}", ack_err);
    transcode_fails(&cv__acknowledge_request__descriptor,
                    "{\"acknowledgement_state\":[\"accepted\"]}", ack_err);
    transcode_fails(&transcode_all_descriptor,
                    "{\"req\":1,\"rstate\":[\"accepted\",null]}",
                    "rstate[1] must be acknowledged, accepted, deferred, "
                    "escalated, resolved, or dismissed");
}

static void
test_transcode_enum_unset_does_not_round_trip(void **state)
{
    Cv__AcknowledgeRequest req = CV__ACKNOWLEDGE_REQUEST__INIT;
    char *text;

    (void)state;
    /* The header's two rules meet here: an unset enum is written as null,
     * and null is not accepted for an enum on input. Callers re-reading
     * their own output must drop null enum keys first. */
    text = cv_message_to_json_text(&req.base, JSON_COMPACT);
    assert_non_null(strstr(text, "\"acknowledgement_state\":null"));
    transcode_fails(&cv__acknowledge_request__descriptor, text,
                    "acknowledgement_state must be acknowledged, accepted, "
                    "deferred, escalated, resolved, or dismissed");
    free(text);
}

/* Stored records are read back with cv_json_record_to_message, for which
 * a null enum is unset: whatever was written round-trips. */
static void
test_transcode_record_round_trips_unset_enum(void **state)
{
    Cv__RetryDecision d = CV__RETRY_DECISION__INIT;
    ProtobufCMessage *back = NULL;
    Cv__RetryDecision *got;
    cv_error err;
    char *text;

    (void)state;
    d.plan_id = "p";
    d.has_action = 1;
    d.action = CV__RETRY_ACTION__RETRY_ACTION_WAIT;
    text = cv_message_to_json_text(&d.base, JSON_COMPACT);
    assert_non_null(strstr(text, "\"acknowledgement_state\":null"));
    assert_int_equal(cv_json_record_to_message(&cv__retry_decision__descriptor,
                                               text, &back, &err),
                     0);
    got = (Cv__RetryDecision *)back;
    assert_false(got->has_acknowledgement_state);
    assert_true(got->has_action);
    assert_int_equal(got->action, CV__RETRY_ACTION__RETRY_ACTION_WAIT);
    assert_string_equal(got->plan_id, "p");
    protobuf_c_message_free_unpacked(back, NULL);
    free(text);

    /* A bad enum name in a stored record is still an error. */
    assert_int_not_equal(
        cv_json_record_to_message(&cv__retry_decision__descriptor,
                                  "{\"action\":\"later\"}", &back, &err),
        0);
    assert_null(back);
    assert_int_equal(cv_json_record_to_message(&cv__retry_decision__descriptor,
                                               "[1]", &back, &err),
                     CV_DATA_LOSS);
}

static void
test_transcode_enum_output_names(void **state)
{
    Cv__Acknowledgement ack = CV__ACKNOWLEDGEMENT__INIT;
    int vals[] = {1, 99};
    transcode_all all;
    json_t *j;
    const char *name;

    (void)state;
    j = cv_message_to_json(&ack.base);
    assert_true(json_is_null(json_object_get(j, "acknowledgement_state")));
    json_decref(j);

    ack.has_acknowledgement_state = 1;
    ack.acknowledgement_state = CV__ACK_STATE__ACK_STATE_RESOLVED;
    j = cv_message_to_json(&ack.base);
    assert_string_equal(
        json_string_value(json_object_get(j, "acknowledgement_state")),
        "resolved");
    json_decref(j);

    /* A number outside the enum is written as null. */
    ack.acknowledgement_state = (Cv__AckState)99;
    j = cv_message_to_json(&ack.base);
    assert_non_null(j);
    assert_true(json_is_null(json_object_get(j, "acknowledgement_state")));
    json_decref(j);

    /* Repeated enums: names, and null for unknown numbers. */
    transcode_all_init(&all.base);
    all.n_rstate = 2;
    all.rstate = (Cv__AckState *)vals;
    j = cv_message_to_json(&all.base);
    assert_non_null(j);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(j, "rstate"), 0)),
        "acknowledged");
    assert_true(json_is_null(json_array_get(json_object_get(j, "rstate"), 1)));
    json_decref(j);

    name = cv_enum_json_name(&cv__ack_state__descriptor, 2);
    assert_string_equal(name, "accepted");
    /* Cached for the process: the same pointer every time. */
    assert_ptr_equal(cv_enum_json_name(&cv__ack_state__descriptor, 2), name);
    assert_string_equal(cv_enum_json_name(&cv__alert_level__descriptor, 3),
                        "critical");
    assert_string_equal(cv_enum_json_name(&cv__retry_action__descriptor, 3),
                        "suppress");
    assert_string_equal(cv_enum_json_name(&transcode_phase_descriptor, 1),
                        "in_progress");
    assert_string_equal(cv_enum_json_name(&transcode_http_descriptor, 404),
                        "not_found");
    assert_string_equal(cv_enum_json_name(&cv__ack_state__descriptor, 0),
                        "unspecified");
    assert_null(cv_enum_json_name(&cv__ack_state__descriptor, 42));
    assert_null(cv_enum_json_name(&cv__ack_state__descriptor, -1));
    assert_null(cv_enum_json_name(NULL, 1));
}

static void
test_transcode_raw_json_round_trip(void **state)
{
    Cv__EvidenceEvent *ev;
    Cv__EvidenceEvent out = CV__EVIDENCE_EVENT__INIT;
    Cv__RawJson raw = CV__RAW_JSON__INIT;
    json_t *j, *want;

    (void)state;
    ev = (Cv__EvidenceEvent *)transcode_ok(
        &cv__evidence_event__descriptor,
        "{\"kind\":\"plan\",\"record\":{\"z\":[1,2.5,{\"b\":null}],"
        "\"a\":\"x\",\"t\":true}}");
    assert_non_null(ev->record);
    /* Stored compact, keys in the order given. */
    assert_string_equal(ev->record->json,
                        "{\"z\":[1,2.5,{\"b\":null}],\"a\":\"x\",\"t\":true}");
    j = cv_message_to_json(&ev->base);
    want = json_loads("{\"z\":[1,2.5,{\"b\":null}],\"a\":\"x\",\"t\":true}", 0,
                      NULL);
    /* Written as a JSON value, not as a string. */
    assert_true(json_is_object(json_object_get(j, "record")));
    assert_true(json_equal(json_object_get(j, "record"), want));
    json_decref(want);
    json_decref(j);
    transcode_round_trip(&ev->base);
    protobuf_c_message_free_unpacked(&ev->base, NULL);

    /* Any JSON value, scalars included. */
    ev = (Cv__EvidenceEvent *)transcode_ok(&cv__evidence_event__descriptor,
                                           "{\"record\":42}");
    assert_string_equal(ev->record->json, "42");
    protobuf_c_message_free_unpacked(&ev->base, NULL);
    ev = (Cv__EvidenceEvent *)transcode_ok(&cv__evidence_event__descriptor,
                                           "{\"record\":\"s\"}");
    assert_string_equal(ev->record->json, "\"s\"");
    protobuf_c_message_free_unpacked(&ev->base, NULL);
    /* null is "not given". */
    ev = (Cv__EvidenceEvent *)transcode_ok(&cv__evidence_event__descriptor,
                                           "{\"record\":null}");
    assert_null(ev->record);
    protobuf_c_message_free_unpacked(&ev->base, NULL);

    /* Unparsable or missing stored text is written as null. */
    out.record = &raw;
    raw.json = "{not json";
    transcode_text_is(
        &out.base,
        "{\"position\":null,\"kind\":null,\"record_id\":null,\"plan_id\":null,"
        "\"provider\":null,\"actor\":null,\"request_id\":null,"
        "\"created_at\":null,\"record\":null,\"principal\":null,"
        "\"metadata_kind\":null,\"session_id\":null,"
        "\"acknowledgement_id\":null,\"delivery_id\":null,"
        "\"retry_plan_id\":null,\"run_id\":null,"
        "\"executive_report_id\":null,\"decision_count\":null,"
        "\"blocked_count\":null,\"approval_required_count\":null}");
    raw.json = NULL;
    j = cv_message_to_json(&out.base);
    assert_true(json_is_null(json_object_get(j, "record")));
    json_decref(j);
    raw.json = "[1,\"two\"]";
    j = cv_message_to_json(&out.base);
    assert_true(json_is_array(json_object_get(j, "record")));
    assert_int_equal(json_array_size(json_object_get(j, "record")), 2);
    json_decref(j);
}

static void
test_transcode_unknown_keys_ignored(void **state)
{
    Cv__RetryPlanRequest *r;

    (void)state;
    r = (Cv__RetryPlanRequest *)transcode_ok(
        &cv__retry_plan_request__descriptor,
        "{\"extra\":{\"deep\":[1,2,{\"x\":null}]},\"plan_id\":\"p\","
        "\"retry_policy\":{\"max_retries\":3,\"who\":\"me\"},"
        "\"PLAN_ID\":7}");
    assert_string_equal(r->plan_id, "p");
    assert_int_equal(r->retry_policy->max_retries, 3);
    /* Never stored: the output has exactly the proto fields. */
    transcode_text_is(
        &r->base, "{\"generated_by\":null,\"plan_id\":\"p\",\"retry_policy\":{"
                  "\"max_retry_attempts\":null,\"max_retries\":3,"
                  "\"allow_immediate_retry\":null,\"retry_delay_minutes\":null,"
                  "\"delay_minutes\":null,\"backoff_multiplier\":null,"
                  "\"multiplier\":null},\"cursor\":null,\"limit\":null}");
    assert_int_equal(r->base.n_unknown_fields, 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void
test_transcode_null_means_not_given(void **state)
{
    Cv__EscalationPlan *p;

    (void)state;
    p = (Cv__EscalationPlan *)transcode_ok(
        &cv__escalation_plan__descriptor,
        "{\"plan_id\":null,\"recovery_slo_minutes\":null,"
        "\"selected_providers\":null,\"escalation_routes\":null,"
        "\"executive_summary\":null,\"controls\":[\"c\"]}");
    assert_null(p->plan_id);
    assert_false(p->has_recovery_slo_minutes);
    assert_int_equal(p->n_selected_providers, 0);
    assert_int_equal(p->n_escalation_routes, 0);
    assert_null(p->executive_summary);
    assert_int_equal(p->n_controls, 1);
    assert_string_equal(p->controls[0], "c");
    protobuf_c_message_free_unpacked(&p->base, NULL);
}

static void
test_transcode_type_error_messages(void **state)
{
    const ProtobufCMessageDescriptor *ack =
        &cv__acknowledge_request__descriptor;

    (void)state;
    transcode_fails(ack, "{\"provider\":5}", "provider must be a string");
    transcode_fails(ack, "{\"provider\":{}}", "provider must be a string");
    transcode_fails(&cv__record_delivery_request__descriptor,
                    "{\"status_code\":\"abc\"}",
                    "status_code must be an integer");
    transcode_fails(&cv__retry_policy__descriptor,
                    "{\"retry_delay_minutes\":[1]}",
                    "retry_delay_minutes must be a number");
    transcode_fails(&cv__record_delivery_request__descriptor,
                    "{\"success\":\"yes\"}", "success must be a boolean");
    transcode_fails(&cv__schedule_run_request__descriptor,
                    "{\"schedule\":\"daily\"}", "schedule must be an object");
    transcode_fails(&cv__escalation_plan__descriptor, "{\"controls\":\"c\"}",
                    "controls must be an array");
    transcode_fails(&cv__schedule_run_request__descriptor,
                    "{\"schedule\":{\"interval_minutes\":1e20}}",
                    "schedule.interval_minutes is out of range");
    transcode_fails(&cv__rpc_request__descriptor, "{\"payload\":\"!!!!\"}",
                    "payload must be base64");
    transcode_fails(&cv__rpc_request__descriptor, "{\"payload\":12}",
                    "payload must be a string");
}

static void
test_transcode_error_never_echoes_value(void **state)
{
    ProtobufCMessage *msg = NULL;
    cv_error err;
    static const char *const bodies[] = {
        "{\"notes\":[\"hunter2\"]}",
        "{\"notes\":\"hunter2",
        "{\"acknowledgement_state\":\"hunter2\"}",
        "{\"notes\":\"x\", hunter2}",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        cv_error_clear(&err);
        assert_int_equal(
            cv_json_text_to_message(&cv__acknowledge_request__descriptor,
                                    bodies[i], strlen(bodies[i]), &msg, &err),
            CV_INVALID_ARGUMENT);
        assert_null(msg);
        assert_true(err.msg[0] != '\0');
        if (strstr(err.msg, "hunter2") != NULL)
            fail_msg("error echoes the value: %s", err.msg);
    }
}

static void
test_transcode_body_errors(void **state)
{
    const ProtobufCMessageDescriptor *d = &cv__acknowledge_request__descriptor;
    ProtobufCMessage *msg;
    cv_error err;
    json_t *arr;

    (void)state;
    transcode_fails(d, "[1]", "request body must be a JSON object");
    transcode_fails(d, "42", "request body must be a JSON object");
    transcode_fails(d, "null", "request body must be a JSON object");
    transcode_fails(d, "\"s\"", "request body must be a JSON object");
    transcode_fails(d, "{\"a\": 1,\n \"b\": x}",
                    "request body is not valid JSON: line 2 column 7");
    transcode_fails(d, "{", "request body is not valid JSON: line 1 column 1");
    transcode_fails(d, "{} {}",
                    "request body is not valid JSON: line 1 column 4");

    /* An empty (or blank) body is {}. */
    msg = transcode_ok(d, "");
    assert_null(((Cv__AcknowledgeRequest *)msg)->plan_id);
    protobuf_c_message_free_unpacked(msg, NULL);
    msg = transcode_ok(d, " \r\n");
    protobuf_c_message_free_unpacked(msg, NULL);
    msg = NULL;
    cv_error_clear(&err);
    assert_int_equal(cv_json_text_to_message(d, NULL, 0, &msg, &err), 0);
    assert_non_null(msg);
    protobuf_c_message_free_unpacked(msg, NULL);

    /* Only len bytes are read. */
    msg = NULL;
    assert_int_equal(
        cv_json_text_to_message(d, "{\"notes\":\"n\"}garbage", 13, &msg, &err),
        0);
    assert_string_equal(((Cv__AcknowledgeRequest *)msg)->notes, "n");
    protobuf_c_message_free_unpacked(msg, NULL);

    /* The json_t entry point checks the type as well. */
    arr = json_array();
    msg = (ProtobufCMessage *)&msg;
    assert_int_equal(cv_json_to_message(d, arr, &msg, &err),
                     CV_INVALID_ARGUMENT);
    assert_null(msg);
    assert_string_equal(err.msg, "request body must be a JSON object");
    json_decref(arr);
    assert_int_equal(cv_json_to_message(d, NULL, &msg, &err),
                     CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg, "request body must be a JSON object");
}

static void
test_transcode_strings_and_bytes(void **state)
{
    Cv__RpcRequest *r;
    Cv__HealthReply h = CV__HEALTH_REPLY__INIT;
    json_t *j;
    cv_error err;
    ProtobufCMessage *msg = NULL;

    (void)state;
    r = (Cv__RpcRequest *)transcode_ok(
        &cv__rpc_request__descriptor,
        "{\"method\":\"ack.Health\",\"payload\":\"aGVsbG8=\"}");
    assert_true(r->has_payload);
    assert_int_equal(r->payload.len, 5);
    assert_memory_equal(r->payload.data, "hello", 5);
    transcode_text_is(&r->base, "{\"method\":\"ack.Health\","
                                "\"request_id\":null,\"deadline_unix_ms\":null,"
                                "\"actor\":null,\"idempotency_key\":null,"
                                "\"payload\":\"aGVsbG8=\",\"key_id\":null,"
                                "\"nonce\":null,\"signature\":null,"
                                "\"session_offer\":null,\"session_id\":null,"
                                "\"session_mac\":null}");
    transcode_round_trip(&r->base);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* Unpadded and URL-safe base64 are accepted too. */
    r = (Cv__RpcRequest *)transcode_ok(&cv__rpc_request__descriptor,
                                       "{\"payload\":\"aGVsbG8\"}");
    assert_int_equal(r->payload.len, 5);
    assert_memory_equal(r->payload.data, "hello", 5);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    r = (Cv__RpcRequest *)transcode_ok(&cv__rpc_request__descriptor,
                                       "{\"payload\":\"-_8\"}");
    assert_int_equal(r->payload.len, 2);
    assert_memory_equal(r->payload.data, "\xfb\xff", 2);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    r = (Cv__RpcRequest *)transcode_ok(&cv__rpc_request__descriptor,
                                       "{\"payload\":\"\"}");
    assert_true(r->has_payload);
    assert_int_equal(r->payload.len, 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    transcode_fails(&cv__rpc_request__descriptor, "{\"payload\":\"aGVsb\"}",
                    "payload must be base64");

    /* "\u0000" parses in jansson but cannot be a C string. */
    j = json_pack("{s:s#}", "service", "a\0b", (size_t)3);
    assert_non_null(j);
    cv_error_clear(&err);
    assert_int_equal(
        cv_json_to_message(&cv__health_reply__descriptor, j, &msg, &err),
        CV_INVALID_ARGUMENT);
    assert_null(msg);
    assert_string_equal(err.msg, "service must not contain NUL characters");
    json_decref(j);

    /* Invalid UTF-8 from the wire is written with U+FFFD, not dropped. */
    h.service = "ok\xff";
    transcode_text_is(&h.base, "{\"service\":\"ok\xef\xbf\xbd\","
                               "\"database_ok\":null,\"status\":null}");
    /* Escapes come back as the characters they stand for. */
    msg = transcode_ok(&cv__health_reply__descriptor,
                       "{\"service\":\"q\\\"\\n\\u00e9\"}");
    assert_string_equal(((Cv__HealthReply *)msg)->service, "q\"\n\xc3\xa9");
    protobuf_c_message_free_unpacked(msg, NULL);
}

static void
test_transcode_required_oneof_and_default(void **state)
{
    transcode_all *m;
    transcode_all t;
    json_t *j;

    (void)state;
    transcode_fails(&transcode_all_descriptor, "{}", "req is required");
    transcode_fails(&transcode_all_descriptor, "{\"req\":null}",
                    "req is required");
    transcode_fails(&transcode_all_descriptor, "{\"req\":1,\"child\":{}}",
                    "child.req is required");

    m = (transcode_all *)transcode_ok(&transcode_all_descriptor,
                                      "{\"req\":1,\"one_a\":\"x\"}");
    assert_int_equal(m->pick_case, 25);
    assert_string_equal(m->one_a, "x");
    /* The default string is "not given": null on output. */
    assert_ptr_equal(m->sdef, transcode_sdef_default);
    j = cv_message_to_json(&m->base);
    assert_string_equal(json_string_value(json_object_get(j, "one_a")), "x");
    assert_true(json_is_null(json_object_get(j, "one_b")));
    assert_true(json_is_null(json_object_get(j, "sdef")));
    json_decref(j);
    protobuf_c_message_free_unpacked(&m->base, NULL);

    /* Two members of one oneof cannot both be given. */
    transcode_fails(&transcode_all_descriptor,
                    "{\"req\":1,\"one_a\":\"x\",\"one_b\":2}",
                    "one_b cannot be combined with one_a");
    /* Enums are set: an unset one is written as null, which input rejects
     * (see test_transcode_enum_unset_does_not_round_trip). */
    t = (transcode_all){
        .base = PROTOBUF_C_MESSAGE_INIT(&transcode_all_descriptor),
        .sdef = transcode_sdef_default,
        .req = 3,
        .pick_case = 26,
        .one_b = -7,
        .has_state = 1,
        .state = CV__ACK_STATE__ACK_STATE_ACKNOWLEDGED,
        .has_phase = 1,
        .phase = 2,
    };
    transcode_round_trip(&t.base);
}

static void
test_transcode_depth_limit(void **state)
{
    ProtobufCMessage *m;
    transcode_all *t;
    json_t *top, *j;
    char *body;
    char want[CV_ERROR_MSG_MAX];
    size_t o = 0;
    int levels;

    (void)state;
    body = transcode_nested(32);
    m = transcode_ok(&transcode_all_descriptor, body);
    t = (transcode_all *)m;
    for (levels = 0; t->child != NULL; levels++)
        t = t->child;
    assert_int_equal(levels, 32);
    /* All 32 levels are written back out. */
    top = cv_message_to_json(m);
    assert_non_null(top);
    j = top;
    for (levels = 0; json_is_object(json_object_get(j, "child")); levels++)
        j = json_object_get(j, "child");
    assert_int_equal(levels, 32);
    assert_true(json_is_null(json_object_get(j, "child")));
    json_decref(top);
    protobuf_c_message_free_unpacked(m, NULL);
    free(body);

    body = transcode_nested(33);
    for (int i = 0; i < 33; i++)
        o += (size_t)snprintf(want + o, sizeof(want) - o, "%schild",
                              i > 0 ? "." : "");
    snprintf(want + o, sizeof(want) - o, " nests too deeply");
    transcode_fails(&transcode_all_descriptor, body, want);
    free(body);
}

static void
test_transcode_error_frees_partial_message(void **state)
{
    (void)state;
    /* Strings, arrays, bytes and nested messages are built before the
     * last field fails; ASan reports any of them left behind. */
    transcode_fails(
        &transcode_all_descriptor,
        "{\"req\":1,\"s\":\"x\",\"by\":\"aGk=\",\"rby\":[\"aGk=\",\"aGk=\"],"
        "\"child\":{\"req\":1,\"s\":\"y\",\"rraw\":[{},[]]},"
        "\"one_a\":\"z\",\"rraw\":[1,2],\"phase\":\"nope\"}",
        "phase must be in_progress or done");
    transcode_fails(&transcode_all_descriptor,
                    "{\"req\":1,\"child\":{\"req\":1,\"child\":{\"s\":\"q\","
                    "\"rby\":[\"aGk=\",\"#\"],\"req\":1}}}",
                    "child.child.rby[1] must be base64");
    transcode_fails(&cv__record_plan_request__descriptor,
                    "{\"generated_by\":\"g\",\"escalation_routes\":["
                    "{\"provider\":\"a\",\"reason\":\"r\"},"
                    "{\"provider\":\"b\",\"slo_breached\":\"no\"}]}",
                    "escalation_routes[1].slo_breached must be a boolean");
}

static void
test_transcode_round_trip(void **state)
{
    Cv__RetryDecision d[2] = {CV__RETRY_DECISION__INIT,
                              CV__RETRY_DECISION__INIT};
    Cv__RetryDecision *dp[2] = {&d[0], &d[1]};
    Cv__RetryPlan plan = CV__RETRY_PLAN__INIT;
    int64_t codes[] = {500, 503, 9007199254740993LL};
    char *controls[] = {"no-secrets", "idempotent"};
    ProtobufCMessage *m;

    (void)state;
    plan.schema_version = "cavra.retry-plan.v1";
    plan.retry_plan_id = "rtp0123456789abcdef";
    plan.has_alert_level = 1;
    plan.alert_level = CV__ALERT_LEVEL__ALERT_LEVEL_WARNING;
    plan.has_decision_count = 1;
    plan.decision_count = 2;
    plan.has_base_retry_delay_minutes = 1;
    plan.base_retry_delay_minutes = 0.1;
    plan.has_allow_immediate_retry = 1;
    plan.allow_immediate_retry = 0;
    plan.n_retry_decisions = 2;
    plan.retry_decisions = dp;
    plan.n_controls = 2;
    plan.controls = controls;
    d[0].provider = "s3";
    d[0].has_action = 1;
    d[0].action = CV__RETRY_ACTION__RETRY_ACTION_WAIT;
    d[0].has_retry_delay_minutes = 1;
    d[0].retry_delay_minutes = 12.75;
    d[0].n_failed_status_codes = 3;
    d[0].failed_status_codes = codes;
    d[0].has_acknowledgement_state = 1;
    d[0].acknowledgement_state = CV__ACK_STATE__ACK_STATE_DEFERRED;
    d[1].provider = "";
    d[1].has_retry_count = 1;
    d[1].retry_count = -1;
    d[1].has_action = 1;
    d[1].action = CV__RETRY_ACTION__RETRY_ACTION_SUPPRESS;
    d[1].has_acknowledgement_state = 1;
    d[1].acknowledgement_state = CV__ACK_STATE__ACK_STATE_ACKNOWLEDGED;
    transcode_round_trip(&plan.base);

    /* And from JSON: every type of AllTypes survives JSON -> msg -> JSON. */
    m = transcode_ok(
        &transcode_all_descriptor,
        "{\"i32\":-5,\"u32\":4294967295,\"s32\":-2147483648,\"f32\":7,"
        "\"sf32\":-8,\"i64\":-9007199254740993,\"u64\":"
        "\"18446744073709551615\","
        "\"s64\":\"-9223372036854775808\",\"f64\":1,\"sf64\":-1,\"fl\":0.3,"
        "\"db\":0.1,\"b\":false,\"s\":\"\",\"by\":\"AAEC/w==\","
        "\"state\":\"deferred\",\"child\":{\"req\":2,\"rd\":[1e-300],"
        "\"state\":\"resolved\",\"phase\":\"in_progress\"},"
        "\"rb\":[false],\"rd\":[-0.5],\"rstate\":[\"escalated\"],"
        "\"rby\":[\"AA==\"],\"ru64\":[\"18446744073709551615\"],"
        "\"sdef\":\"dflt\",\"req\":0,\"one_a\":\"a\",\"phase\":\"done\","
        "\"rraw\":[{\"x\":[]},\"s\",null]}");
    transcode_round_trip(m);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void
test_transcode_set_field_text(void **state)
{
    Cv__ListEvidenceRequest *l;
    Cv__AcknowledgeRequest *a;
    Cv__RetryPolicy *p;
    transcode_all *t;
    cv_error err;

    (void)state;
    cv_error_clear(&err);
    l = (Cv__ListEvidenceRequest *)cv_message_new(
        &cv__list_evidence_request__descriptor);
    assert_int_equal(cv_message_set_field_text(&l->base, "limit", "42", &err),
                     0);
    assert_true(l->has_limit);
    assert_int_equal(l->limit, 42);
    assert_int_equal(cv_message_set_field_text(&l->base, "limit",
                                               "-9223372036854775808", &err),
                     0);
    assert_true(l->limit == INT64_MIN);
    /* Strings are taken as they are, replacing (and freeing) the old. */
    assert_int_equal(
        cv_message_set_field_text(&l->base, "kind", " plan-id ", &err), 0);
    assert_string_equal(l->kind, " plan-id ");
    assert_int_equal(cv_message_set_field_text(&l->base, "kind", "ack", &err),
                     0);
    assert_string_equal(l->kind, "ack");

    static const char *const not_ints[] = {"4x", "",    " 42",  "42 ",
                                           "+1", "1.0", "0x10", "-"};
    for (size_t i = 0; i < sizeof(not_ints) / sizeof(not_ints[0]); i++) {
        assert_int_equal(
            cv_message_set_field_text(&l->base, "limit", not_ints[i], &err),
            CV_INVALID_ARGUMENT);
        assert_string_equal(err.msg, "limit must be an integer");
    }
    assert_int_equal(cv_message_set_field_text(&l->base, "limit",
                                               "9223372036854775808", &err),
                     CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg, "limit is out of range");
    /* A failed set leaves the old value. */
    assert_true(l->limit == INT64_MIN);

    /* A route table naming a missing or non-scalar field is a bug. */
    assert_int_equal(cv_message_set_field_text(&l->base, "nope", "1", &err),
                     CV_INTERNAL);
    assert_string_equal(err.msg,
                        "cv.ListEvidenceRequest has no scalar field nope");
    protobuf_c_message_free_unpacked(&l->base, NULL);

    a = (Cv__AcknowledgeRequest *)transcode_ok(
        &cv__acknowledge_request__descriptor, "{\"plan_id\":\"from-body\"}");
    assert_int_equal(
        cv_message_set_field_text(&a->base, "plan_id", "from-path", &err), 0);
    assert_string_equal(a->plan_id, "from-path");
    assert_int_equal(cv_message_set_field_text(
                         &a->base, "acknowledgement_state", " Escalated", &err),
                     0);
    assert_int_equal(a->acknowledgement_state,
                     CV__ACK_STATE__ACK_STATE_ESCALATED);
    assert_int_equal(cv_message_set_field_text(
                         &a->base, "acknowledgement_state", "bogus", &err),
                     CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg, "acknowledgement_state must be acknowledged, "
                                 "accepted, deferred, escalated, resolved, "
                                 "or dismissed");
    assert_int_equal(
        cv_message_set_field_text(&a->base, "notes", "ok\xff", &err),
        CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg, "notes must be valid UTF-8");
    protobuf_c_message_free_unpacked(&a->base, NULL);

    p = (Cv__RetryPolicy *)cv_message_new(&cv__retry_policy__descriptor);
    static const char *const trues[] = {"true", "1"};
    static const char *const falses[] = {"false", "0"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(cv_message_set_field_text(
                             &p->base, "allow_immediate_retry", trues[i], &err),
                         0);
        assert_true(p->has_allow_immediate_retry && p->allow_immediate_retry);
        assert_int_equal(cv_message_set_field_text(&p->base,
                                                   "allow_immediate_retry",
                                                   falses[i], &err),
                         0);
        assert_false(p->allow_immediate_retry);
    }
    assert_int_equal(cv_message_set_field_text(
                         &p->base, "allow_immediate_retry", "yes", &err),
                     CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg, "allow_immediate_retry must be a boolean");
    assert_int_equal(cv_message_set_field_text(&p->base, "retry_delay_minutes",
                                               "2.5e1", &err),
                     0);
    assert_true(p->has_retry_delay_minutes);
    assert_true(p->retry_delay_minutes == 25.0);
    static const char *const not_numbers[] = {"abc", "",    " 1",  "1x",
                                              "inf", "nan", "0x10"};
    for (size_t i = 0; i < sizeof(not_numbers) / sizeof(not_numbers[0]); i++) {
        assert_int_equal(cv_message_set_field_text(&p->base,
                                                   "retry_delay_minutes",
                                                   not_numbers[i], &err),
                         CV_INVALID_ARGUMENT);
        assert_string_equal(err.msg, "retry_delay_minutes must be a number");
    }
    assert_int_equal(cv_message_set_field_text(&p->base, "retry_delay_minutes",
                                               "1e999", &err),
                     CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg, "retry_delay_minutes is out of range");
    protobuf_c_message_free_unpacked(&p->base, NULL);

    t = (transcode_all *)transcode_ok(&transcode_all_descriptor,
                                      "{\"req\":1,\"by\":\"aGk=\"}");
    assert_int_equal(
        cv_message_set_field_text(&t->base, "i32", "-2147483649", &err),
        CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg, "i32 is out of range");
    assert_int_equal(cv_message_set_field_text(&t->base, "u32", "-1", &err),
                     CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg, "u32 is out of range");
    assert_int_equal(cv_message_set_field_text(&t->base, "u64",
                                               "18446744073709551615", &err),
                     0);
    assert_true(t->has_u64 && t->u64 == UINT64_MAX);
    assert_int_equal(cv_message_set_field_text(&t->base, "fl", "0.25", &err),
                     0);
    assert_true(t->has_fl && t->fl == 0.25f);
    assert_int_equal(
        cv_message_set_field_text(&t->base, "by", "aGVsbG8=", &err), 0);
    assert_int_equal(t->by.len, 5);
    assert_int_equal(cv_message_set_field_text(&t->base, "sdef", "v", &err), 0);
    assert_string_equal(t->sdef, "v");
    assert_int_equal(
        cv_message_set_field_text(&t->base, "phase", "in-progress", &err), 0);
    assert_int_equal(t->phase, 1);
    assert_int_equal(cv_message_set_field_text(&t->base, "one_a", "a", &err),
                     0);
    assert_int_equal(cv_message_set_field_text(&t->base, "one_a", "b", &err),
                     0);
    assert_string_equal(t->one_a, "b");
    assert_int_equal(cv_message_set_field_text(&t->base, "one_b", "1", &err),
                     CV_INVALID_ARGUMENT);
    assert_string_equal(err.msg, "one_b cannot be combined with one_a");
    assert_int_equal(cv_message_set_field_text(&t->base, "child", "x", &err),
                     CV_INTERNAL);
    assert_int_equal(cv_message_set_field_text(&t->base, "rb", "true", &err),
                     CV_INTERNAL);
    assert_string_equal(err.msg, "cvtest.AllTypes has no scalar field rb");
    protobuf_c_message_free_unpacked(&t->base, NULL);
}

/* cv_json_is_integer_type: the ten integer types and nothing else (the
 * docs generator names them "integer"). */
static void
test_transcode_integer_types(void **state)
{
    static const ProtobufCType integers[] = {
        PROTOBUF_C_TYPE_INT32,    PROTOBUF_C_TYPE_SINT32,
        PROTOBUF_C_TYPE_SFIXED32, PROTOBUF_C_TYPE_INT64,
        PROTOBUF_C_TYPE_SINT64,   PROTOBUF_C_TYPE_SFIXED64,
        PROTOBUF_C_TYPE_UINT32,   PROTOBUF_C_TYPE_FIXED32,
        PROTOBUF_C_TYPE_UINT64,   PROTOBUF_C_TYPE_FIXED64};
    static const ProtobufCType others[] = {
        PROTOBUF_C_TYPE_FLOAT,  PROTOBUF_C_TYPE_DOUBLE, PROTOBUF_C_TYPE_BOOL,
        PROTOBUF_C_TYPE_ENUM,   PROTOBUF_C_TYPE_STRING, PROTOBUF_C_TYPE_BYTES,
        PROTOBUF_C_TYPE_MESSAGE};

    (void)state;
    for (size_t i = 0; i < sizeof(integers) / sizeof(integers[0]); i++)
        assert_true(cv_json_is_integer_type(integers[i]));
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        assert_false(cv_json_is_integer_type(others[i]));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transcode_message_new),
        cmocka_unit_test(test_transcode_scalar_fields),
        cmocka_unit_test(test_transcode_all_types_input),
        cmocka_unit_test(test_transcode_all_types_output),
        cmocka_unit_test(test_transcode_output_every_field_in_order),
        cmocka_unit_test(test_transcode_nested_message_and_path),
        cmocka_unit_test(test_transcode_repeated_messages),
        cmocka_unit_test(test_transcode_int64_beyond_double_precision),
        cmocka_unit_test(test_transcode_integer_rules),
        cmocka_unit_test(test_transcode_float_and_double),
        cmocka_unit_test(test_transcode_bool_strict),
        cmocka_unit_test(test_transcode_enum_normalisation),
        cmocka_unit_test(test_transcode_enum_bad_value),
        cmocka_unit_test(test_transcode_enum_null_and_non_string),
        cmocka_unit_test(test_transcode_enum_unset_does_not_round_trip),
        cmocka_unit_test(test_transcode_record_round_trips_unset_enum),
        cmocka_unit_test(test_transcode_enum_output_names),
        cmocka_unit_test(test_transcode_raw_json_round_trip),
        cmocka_unit_test(test_transcode_unknown_keys_ignored),
        cmocka_unit_test(test_transcode_null_means_not_given),
        cmocka_unit_test(test_transcode_type_error_messages),
        cmocka_unit_test(test_transcode_error_never_echoes_value),
        cmocka_unit_test(test_transcode_body_errors),
        cmocka_unit_test(test_transcode_strings_and_bytes),
        cmocka_unit_test(test_transcode_required_oneof_and_default),
        cmocka_unit_test(test_transcode_depth_limit),
        cmocka_unit_test(test_transcode_error_frees_partial_message),
        cmocka_unit_test(test_transcode_round_trip),
        cmocka_unit_test(test_transcode_set_field_text),
        cmocka_unit_test(test_transcode_integer_types),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
