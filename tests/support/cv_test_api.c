/*
 * cv_test_api.c -- the assertions and record-making RPCs the integration
 * and end-to-end tests share (see cv_test_api.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_test_api.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON ------------------------------------------------------------- */

json_t *
cv_test_json_get(json_t *root, const char *path)
{
    json_t *cur = root;
    const char *p = path;
    char key[128];

    while (cur != NULL && *p != '\0') {
        if (*p == '.') {
            p++;
            continue;
        }
        if (*p == '[') {
            cur = json_array_get(cur, strtoul(p + 1, NULL, 10));
            p = strchr(p, ']');
            if (p == NULL)
                return NULL;
            p++;
            continue;
        }
        {
            size_t n = strcspn(p, ".[");

            if (n >= sizeof(key))
                return NULL;
            memcpy(key, p, n);
            key[n] = '\0';
            p += n;
            cur = json_object_get(cur, key);
        }
    }
    return cur;
}

const char *
cv_test_json_str(json_t *root, const char *path)
{
    json_t *v = cv_test_json_get(root, path);

    if (!json_is_string(v))
        fail_msg("%s is not a string", path);
    return json_string_value(v);
}

long long
cv_test_json_int(json_t *root, const char *path)
{
    json_t *v = cv_test_json_get(root, path);

    if (!json_is_integer(v))
        fail_msg("%s is not an integer", path);
    return (long long)json_integer_value(v);
}

void
cv_test_assert_str(json_t *root, const char *path, const char *want)
{
    const char *got = cv_test_json_str(root, path);

    if (strcmp(got, want) != 0)
        fail_msg("%s is \"%s\", expected \"%s\"", path, got, want);
}

void
cv_test_assert_int(json_t *root, const char *path, long long want)
{
    long long got = cv_test_json_int(root, path);

    if (got != want)
        fail_msg("%s is %lld, expected %lld", path, got, want);
}

void
cv_test_assert_null(json_t *root, const char *path)
{
    json_t *v = cv_test_json_get(root, path);

    if (v == NULL)
        fail_msg("%s is missing (expected null)", path);
    if (!json_is_null(v))
        fail_msg("%s is not null", path);
}

void
cv_test_assert_bool(json_t *root, const char *path, int want)
{
    json_t *v = cv_test_json_get(root, path);

    if (!json_is_boolean(v))
        fail_msg("%s is not a boolean", path);
    assert_int_equal(json_is_true(v), want);
}

void
cv_test_assert_id(const char *id, const char *prefix)
{
    size_t pl = strlen(prefix);

    assert_non_null(id);
    if (strncmp(id, prefix, pl) != 0 || strlen(id) != pl + 16)
        fail_msg("id \"%s\" is not %s + 16 hex", id, prefix);
    for (size_t i = pl; i < pl + 16; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            fail_msg("id \"%s\" is not lowercase hex", id);
}

void
cv_test_assert_time(const char *t)
{
    size_t n = strlen(t);

    if (n < 20 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' ||
        t[16] != ':')
        fail_msg("\"%s\" is not an RFC 3339 date-time", t);
    if (!(t[n - 1] == 'Z' || (n > 6 && strcmp(t + n - 6, "+00:00") == 0)))
        fail_msg("\"%s\" is not UTC", t);
}

/* ---- HTTP ------------------------------------------------------------- */

const char *
cv_test_url(const cv_test_stack *s, const char *path)
{
    static char url[2048];

    snprintf(url, sizeof(url), "%s%s", s->base_url, path);
    return url;
}

void
cv_test_request(const cv_test_stack *s, const char *method, const char *path,
                const char *ctype, const char *body, const char *const *headers,
                cv_http_response *r)
{
    if (cv_http_request(method, cv_test_url(s, path), ctype, body, headers,
                        r) != 0)
        fail_msg("%s %s: no response", method, path);
    if (r->request_id[0] == '\0')
        fail_msg("%s %s: %ld without X-Request-Id", method, path, r->status);
    if (r->status >= 500)
        fail_msg("%s %s: server error %ld: %s", method, path, r->status,
                 r->body);
}

void
cv_test_post_json(const cv_test_stack *s, const char *path, const char *body,
                  cv_http_response *r)
{
    cv_test_request(s, "POST", path, NULL, body, NULL, r);
}

char *
cv_test_record_plan_http(const cv_test_stack *s, const char *body)
{
    cv_http_response r;
    char *id;

    cv_test_post_json(s, CV_TEST_PLAN_PATH, body, &r);
    if (r.status != 201)
        fail_msg("recording a plan: %ld %s", r.status, r.body);
    id = strdup(cv_test_json_str(r.json, "plan.plan_id"));
    cv_http_response_free(&r);
    assert_non_null(id);
    return id;
}

void
cv_test_request_json(const cv_test_stack *s, const char *method,
                     const char *path, const char *body, long status,
                     cv_http_response *r)
{
    cv_test_request(s, method, path, NULL, body, NULL, r);
    if (r->status != status)
        fail_msg("%s %s: expected %ld, got %ld: %s", method, path, status,
                 r->status, r->body);
    if (!json_is_object(r->json))
        fail_msg("%s %s: not a JSON object: %s", method, path, r->body);
}

json_t *
cv_test_assert_created(const cv_http_response *r, const char *key,
                       json_t **meta)
{
    json_t *record;

    if (r->status != 201)
        fail_msg("expected 201, got %ld: %s", r->status,
                 r->body != NULL ? r->body : "");
    if (strncmp(r->content_type, "application/json", 16) != 0)
        fail_msg("Content-Type is \"%s\"", r->content_type);
    if (!json_is_object(record = json_object_get(r->json, key)))
        fail_msg("no %s object: %s", key, r->body);
    if (meta != NULL &&
        !json_is_object(*meta = json_object_get(r->json, "metadata")))
        fail_msg("no metadata object: %s", r->body);
    cv_test_assert_null(r->json, "actor");
    return record;
}

void
cv_test_assert_error(const cv_http_response *r, long status, const char *code,
                     const char *detail)
{
    json_t *j = r->json;
    const char *got;

    if (r->status != status)
        fail_msg("expected %ld, got %ld: %s", status, r->status,
                 r->body != NULL ? r->body : "");
    if (strncmp(r->content_type, "application/json", 16) != 0)
        fail_msg("error Content-Type is \"%s\"", r->content_type);
    if (!json_is_object(j))
        fail_msg("error body is not a JSON object: %s", r->body);
    if (!json_is_string(json_object_get(j, "detail")) ||
        cv_test_json_str(j, "detail")[0] == '\0')
        fail_msg("error body without detail: %s", r->body);
    if (!json_is_string(json_object_get(j, "code")) ||
        cv_test_json_str(j, "code")[0] == '\0')
        fail_msg("error body without code: %s", r->body);
    cv_test_assert_str(j, "request_id", r->request_id);
    if (code != NULL)
        cv_test_assert_str(j, "code", code);
    got = cv_test_json_str(j, "detail");
    if (detail != NULL && detail[0] == '~') {
        if (strstr(got, detail + 1) == NULL)
            fail_msg("detail \"%s\" does not mention \"%s\"", got, detail + 1);
    } else if (detail != NULL && strcmp(got, detail) != 0) {
        fail_msg("detail is \"%s\", expected \"%s\"", got, detail);
    }
}

void
cv_test_reject(const cv_test_stack *s, const char *method, const char *path,
               const char *ctype, const char *body, long status,
               const char *code, const char *detail)
{
    cv_http_response r;
    cv_test_counts before;
    char what[256];

    cv_test_counts_snapshot(&before);
    cv_test_request(s, method, path, ctype, body, NULL, &r);
    cv_test_assert_error(&r, status, code, detail);
    cv_http_response_free(&r);
    snprintf(what, sizeof(what), "rejected %s %.200s", method, path);
    cv_test_counts_unchanged(&before, what);
}

void
cv_test_reject_400(const cv_test_stack *s, const char *path, const char *body,
                   const char *detail)
{
    cv_test_reject(s, "POST", path, NULL, body, 400, "INVALID_ARGUMENT",
                   detail);
}

/* ---- the store -------------------------------------------------------- */

PGconn *
cv_test_db_connect(void)
{
    const char *url = cv_test_database_url();
    PGconn *conn;
    char msg[512];

    if (url == NULL)
        fail_msg("CAVRA_DATABASE_URL is not set");
    conn = PQconnectdb(url);
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        PQfinish(conn);
        fail_msg("cannot connect: %s", msg);
    }
    return conn;
}

void
cv_test_db_exec(PGconn *conn, const char *sql, const char *param)
{
    const char *p[1] = {param};
    PGresult *res = PQexecParams(conn, sql, param != NULL ? 1 : 0, NULL,
                                 param != NULL ? p : NULL, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char msg[512];

        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
        PQclear(res);
        fail_msg("%s: %s", sql, msg);
    }
    PQclear(res);
}

long
cv_test_db_count(PGconn *conn, const char *sql, const char *param)
{
    const char *p[1] = {param};
    PGresult *res = PQexecParams(conn, sql, param != NULL ? 1 : 0, NULL,
                                 param != NULL ? p : NULL, NULL, NULL, 0);
    long n;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1 ||
        PQnfields(res) < 1 || PQgetisnull(res, 0, 0)) {
        char msg[512];

        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
        PQclear(res);
        fail_msg("%s: no value: %s", sql, msg);
    }
    n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}

long
cv_test_count(const char *sql, const char *param)
{
    long n = cv_test_db_scalar(sql, param);

    if (n < 0)
        fail_msg("query failed: %s", sql);
    return n;
}

/* Every table of the store and where its count goes. */
static const struct {
    const char *table;
    size_t offset;
} cv_test_tables[] = {
    {"escalation_plans", offsetof(cv_test_counts, plans)},
    {"plan_routes", offsetof(cv_test_counts, routes)},
    {"acknowledgements", offsetof(cv_test_counts, acks)},
    {"ack_current", offsetof(cv_test_counts, current)},
    {"delivery_attempts", offsetof(cv_test_counts, deliveries)},
    {"retry_plans", offsetof(cv_test_counts, retry_plans)},
    {"retry_decisions", offsetof(cv_test_counts, decisions)},
    {"report_schedules", offsetof(cv_test_counts, schedules)},
    {"report_runs", offsetof(cv_test_counts, runs)},
    {"executive_reports", offsetof(cv_test_counts, reports)},
    {"idempotency_keys", offsetof(cv_test_counts, idem_keys)},
    {"evidence_events", offsetof(cv_test_counts, events)},
};
#define CV_TEST_N_TABLES (sizeof(cv_test_tables) / sizeof(cv_test_tables[0]))

static long *
cv_test_count_of(cv_test_counts *c, size_t i)
{
    return (long *)((char *)c + cv_test_tables[i].offset);
}

void
cv_test_counts_snapshot(cv_test_counts *c)
{
    char sql[1024], msg[512];
    size_t used;
    PGconn *conn;
    PGresult *res;

    used = (size_t)snprintf(sql, sizeof(sql), "SELECT");
    for (size_t i = 0; i < CV_TEST_N_TABLES && used < sizeof(sql); i++)
        used += (size_t)snprintf(sql + used, sizeof(sql) - used,
                                 "%s (SELECT count(*) FROM %s)",
                                 i > 0 ? "," : "", cv_test_tables[i].table);
    assert_true(used < sizeof(sql));
    conn = cv_test_db_connect();
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
        PQnfields(res) != (int)CV_TEST_N_TABLES) {
        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
        PQclear(res);
        PQfinish(conn);
        fail_msg("counting rows failed: %s", msg);
    }
    for (size_t i = 0; i < CV_TEST_N_TABLES; i++)
        *cv_test_count_of(c, i) = strtol(PQgetvalue(res, 0, (int)i), NULL, 10);
    PQclear(res);
    PQfinish(conn);
}

void
cv_test_counts_unchanged(const cv_test_counts *before, const char *what)
{
    cv_test_counts now, was = *before;
    char diff[1024];
    size_t used = 0;

    cv_test_counts_snapshot(&now);
    diff[0] = '\0';
    for (size_t i = 0; i < CV_TEST_N_TABLES; i++) {
        long b = *cv_test_count_of(&was, i), a = *cv_test_count_of(&now, i);

        if (a != b && used < sizeof(diff))
            used +=
                (size_t)snprintf(diff + used, sizeof(diff) - used,
                                 " %s %ld->%ld", cv_test_tables[i].table, b, a);
    }
    if (diff[0] != '\0')
        fail_msg("%s stored something:%s", what, diff);
}

/* ---- RPC -------------------------------------------------------------- */

void
cv_test_assert_health(cv_rpc_client *cli, const char *service)
{
    Cv__HealthRequest req = CV__HEALTH_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    Cv__HealthReply *h;
    char method[64];
    cv_error err;

    cv_error_clear(&err);
    snprintf(method, sizeof(method), "%s.Health", service);
    CV_TEST_PASS(cv_rpc_call(cli, method, &req.base,
                             &cv__health_reply__descriptor, &rep, NULL, &err),
                 err);
    h = (Cv__HealthReply *)rep;
    assert_string_equal(h->service, service);
    assert_true(h->has_database_ok);
    assert_true(h->database_ok);
    assert_string_equal(h->status, "ok");
    protobuf_c_message_free_unpacked(rep, NULL);
}

void
cv_test_rpc_expect_error(cv_rpc_client *cli, const char *method,
                         const ProtobufCMessage *req,
                         const ProtobufCMessageDescriptor *reply_desc, int code,
                         const char *msg)
{
    ProtobufCMessage *rep = NULL;
    cv_test_counts before;
    cv_error err;
    int rv;

    cv_test_counts_snapshot(&before);
    cv_error_clear(&err);
    rv = cv_rpc_call(cli, method, req, reply_desc, &rep, NULL, &err);
    if (rv == 0) {
        protobuf_c_message_free_unpacked(rep, NULL);
        fail_msg("%s: expected code %d \"%s\", got success", method, code, msg);
    }
    assert_null(rep);
    if (rv != code)
        fail_msg("%s: expected code %d, got %d: %s", method, code, rv, err.msg);
    if (strcmp(err.msg, msg) != 0)
        fail_msg("%s: expected \"%s\", got \"%s\"", method, msg, err.msg);
    cv_test_counts_unchanged(&before, method);
}

int
cv_test_record_plan_call(cv_rpc_client *cli, const char *generated_by,
                         Cv__EscalationRoute *routes, size_t n,
                         const cv_rpc_call_opts *opts,
                         Cv__RecordPlanReply **reply, cv_error *err)
{
    Cv__RecordPlanRequest req = CV__RECORD_PLAN_REQUEST__INIT;
    Cv__EscalationRoute **ptrs;
    ProtobufCMessage *rep = NULL;
    int rv;

    *reply = NULL;
    if ((ptrs = calloc(n > 0 ? n : 1, sizeof(*ptrs))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &routes[i];
    req.generated_by = (char *)generated_by;
    req.n_escalation_routes = n;
    req.escalation_routes = ptrs;
    cv_error_clear(err);
    rv = cv_rpc_call(cli, "ack.RecordPlan", &req.base,
                     &cv__record_plan_reply__descriptor, &rep, opts, err);
    free(ptrs);
    if (rv == 0)
        *reply = (Cv__RecordPlanReply *)rep;
    return rv;
}

Cv__RecordPlanReply *
cv_test_record_plan_rpc(cv_rpc_client *cli, const char *generated_by,
                        Cv__EscalationRoute *routes, size_t n,
                        const cv_rpc_call_opts *opts)
{
    Cv__RecordPlanReply *rep = NULL;
    cv_error err;

    CV_TEST_PASS(cv_test_record_plan_call(cli, generated_by, routes, n, opts,
                                          &rep, &err),
                 err);
    assert_non_null(rep);
    assert_non_null(rep->plan);
    return rep;
}

int
cv_test_ack_call(cv_rpc_client *cli, const char *plan_id, const char *provider,
                 const char *by, int state, const cv_rpc_call_opts *opts,
                 Cv__AcknowledgeReply **reply, cv_error *err)
{
    Cv__AcknowledgeRequest req = CV__ACKNOWLEDGE_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    int rv;

    if (reply != NULL)
        *reply = NULL;
    req.plan_id = (char *)plan_id;
    req.provider = (char *)provider;
    req.acknowledged_by = (char *)by;
    if (state != 0) {
        req.has_acknowledgement_state = 1;
        req.acknowledgement_state = state;
    }
    cv_error_clear(err);
    rv = cv_rpc_call(cli, "ack.Acknowledge", &req.base,
                     &cv__acknowledge_reply__descriptor, &rep, opts, err);
    if (rv == 0 && reply != NULL)
        *reply = (Cv__AcknowledgeReply *)rep;
    else if (rep != NULL)
        protobuf_c_message_free_unpacked(rep, NULL);
    return rv;
}

void
cv_test_ack_rpc(cv_rpc_client *cli, const char *plan_id, const char *provider,
                const char *by, int state, const cv_rpc_call_opts *opts,
                Cv__AcknowledgeReply **reply)
{
    Cv__AcknowledgeReply *rep = NULL;
    cv_error err;

    CV_TEST_PASS(
        cv_test_ack_call(cli, plan_id, provider, by, state, opts, &rep, &err),
        err);
    assert_non_null(rep);
    assert_non_null(rep->acknowledgement);
    if (reply != NULL)
        *reply = rep;
    else
        protobuf_c_message_free_unpacked(&rep->base, NULL);
}

/* ---- embedded records ---- */

static bool
cv_test_path_listed(const char *path, const char *const *list)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++)
        if (strcmp(path, list[i]) == 0)
            return true;
    return false;
}

static void
cv_test_embedded_at(json_t *copy, json_t *record, const char *path,
                    const char *const *ours)
{
    char sub[512];

    if (json_is_object(record)) {
        const char *key;
        json_t *v;

        if (!json_is_object(copy))
            fail_msg("embedded copy: %s is not an object", path);
        json_object_foreach(copy, key, v)
        {
            snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", key);
            if (json_object_get(record, key) == NULL)
                fail_msg("embedded copy: %s is not in the record", sub);
            if (cv_test_path_listed(sub, ours))
                fail_msg("embedded copy: %s should be left out", sub);
            cv_test_embedded_at(v, json_object_get(record, key), sub, ours);
        }
        json_object_foreach(record, key, v)
        {
            snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", key);
            if (json_object_get(copy, key) == NULL &&
                !cv_test_path_listed(sub, ours))
                fail_msg("embedded copy: %s is missing", sub);
        }
    } else if (json_is_array(record)) {
        if (!json_is_array(copy) ||
            json_array_size(copy) != json_array_size(record))
            fail_msg("embedded copy: %s differs in length", path);
        snprintf(sub, sizeof(sub), "%s[]", path);
        for (size_t i = 0; i < json_array_size(record); i++)
            cv_test_embedded_at(json_array_get(copy, i),
                                json_array_get(record, i), sub, ours);
    } else if (!json_equal(copy, record)) {
        fail_msg("embedded copy: %s differs from the record", path);
    }
}

void
cv_test_assert_embedded(json_t *copy, json_t *record, const char *const *ours)
{
    assert_non_null(copy);
    assert_non_null(record);
    cv_test_embedded_at(copy, record, "", ours);
}
