/*
 * routes_test.c -- end-to-end tests of the route table as the method
 * registry (lib/cv_method.h) defines it, through the running gateway:
 * literal path segments win over `{plan_id}` (GET .../retry-plan is 405
 * with Allow: POST, not a 404 plan read), a known path under another
 * method is 405 listing every method it accepts, and /openapi.json
 * documents exactly the registry's REST bindings with their key, status,
 * roles and transaction.
 *
 * The stack runs in sandbox mode (no token file) against the real
 * PostgreSQL named by CAVRA_DATABASE_URL.
 *
 * Run: ctest -R e2e.routes, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_method.h"
#include "cv_test_api.h"

#define P                                                                      \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery"
#define E2E_RETRY_PLAN P "/recovery-escalations/retry-plan"
#define E2E_NOT_FOUND  "recovery escalation plan not found"

CV_TEST_SUITE_STACK(e2e_stack, CV_STACK_ALL)

/* Sends method path (a JSON body unless GET/HEAD) and expects a 405 whose
 * Allow is exactly allow; a body, when there is one, is the documented error
 * with code UNIMPLEMENTED. Stores nothing. */
static void
e2e_expect_405(const char *method, const char *path, const char *allow)
{
    cv_http_response r;
    cv_test_counts before;
    bool head = strcmp(method, "HEAD") == 0;
    const char *body =
        head || strcmp(method, "GET") == 0 ? NULL : "{\"plan_id\": \"x\"}";

    cv_test_counts_snapshot(&before);
    if (cv_http_request(method, cv_test_url(&e2e_stack, path), NULL, body, NULL,
                        &r) != 0)
        fail_msg("%s %s: no answer", method, path);
    if (r.status != 405)
        fail_msg("%s %s: %ld, expected 405: %s", method, path, r.status,
                 r.body != NULL ? r.body : "");
    if (strcmp(r.allow, allow) != 0)
        fail_msg("%s %s: Allow \"%s\", expected \"%s\"", method, path, r.allow,
                 allow);
    if (!head)
        cv_test_assert_error(&r, 405, "UNIMPLEMENTED", "method not allowed");
    cv_http_response_free(&r);
    cv_test_counts_unchanged(&before, "a 405");
}

/* The case: .../recovery-escalations/retry-plan is the retry-plan
 * route under every method, never a read of a plan named "retry-plan". */
static void
test_routes_retry_plan_literal_wins(void **state)
{
    cv_http_response r;
    char *plan_id, path[512];

    (void)state;
    e2e_expect_405("GET", E2E_RETRY_PLAN, "POST");
    e2e_expect_405("HEAD", E2E_RETRY_PLAN, "POST");
    e2e_expect_405("PUT", E2E_RETRY_PLAN, "POST");
    e2e_expect_405("DELETE", E2E_RETRY_PLAN, "POST");
    /* An escaped literal is the same literal. */
    e2e_expect_405("GET", P "/recovery-escalations/retry%2Dplan", "POST");

    /* POST still plans retries. */
    cv_test_post_json(&e2e_stack, E2E_RETRY_PLAN, "{}", &r);
    if (r.status != 201)
        fail_msg("POST retry-plan: %ld %s", r.status, r.body);
    assert_non_null(cv_test_json_get(r.json, "plan.retry_plan_id"));
    cv_http_response_free(&r);

    /* Plan reads are untouched: a real plan, an unknown one, and
     * "retry-plan" one level deeper (the trace of such a plan). */
    plan_id = cv_test_record_plan_http(
        &e2e_stack, "{\"escalation_routes\": [{\"provider\": \"slack\"}]}");
    snprintf(path, sizeof(path), P "/recovery-escalations/%s", plan_id);
    cv_test_request_json(&e2e_stack, "GET", path, NULL, 200, &r);
    cv_test_assert_str(r.json, "plan.plan_id", plan_id);
    cv_http_response_free(&r);
    e2e_expect_405("POST", path, "GET");
    free(plan_id);
    cv_test_request(&e2e_stack, "GET",
                    P
                    "/recovery-escalations/gordackrecoveryesc-0000000000000000",
                    NULL, NULL, NULL, &r);
    cv_test_assert_error(&r, 404, "NOT_FOUND", E2E_NOT_FOUND);
    cv_http_response_free(&r);
}

/* Every registry REST binding: its own method reaches it (not a 404 or
 * 405), any other method is a 405 whose Allow lists the binding's path's
 * methods. */
static void
test_routes_every_binding_405_allow(void **state)
{
    (void)state;
    for (size_t i = 0; i < cv_method_count; i++) {
        const cv_method_info *m = &cv_methods[i];
        char path[512], allow[64] = "";
        size_t o = 0;

        if (m->http_method == NULL)
            continue;
        /* {plan_id} -> an id no plan has. */
        for (const char *p = m->path; *p != '\0' && o + 40 < sizeof(path);) {
            if (*p == '{') {
                o += (size_t)snprintf(path + o, sizeof(path) - o,
                                      "gordackrecoveryesc-0000000000000001");
                p = strchr(p, '}') + 1;
            } else {
                path[o++] = *p++;
            }
        }
        path[o] = '\0';
        for (size_t j = 0; j < cv_method_count; j++) {
            size_t used = strlen(allow);

            if (cv_methods[j].http_method == NULL ||
                strcmp(cv_methods[j].path, m->path) != 0 ||
                strstr(allow, cv_methods[j].http_method) != NULL)
                continue;
            snprintf(allow + used, sizeof(allow) - used, "%s%s",
                     used > 0 ? ", " : "", cv_methods[j].http_method);
        }
        e2e_expect_405("PATCH", path, allow);
    }
}

/* /openapi.json has one operation per registry REST binding, carrying the
 * registry row: Idempotency-Key exactly on keyed methods, 201 exactly on
 * those that store a record, and the method, roles and transaction. */
static void
test_routes_openapi_is_the_registry(void **state)
{
    cv_http_response r;
    json_t *paths;
    size_t n_bindings = 0, n_ops = 0;

    (void)state;
    cv_test_request_json(&e2e_stack, "GET", "/openapi.json", NULL, 200, &r);
    paths = json_object_get(r.json, "paths");
    assert_true(json_is_object(paths));
    for (size_t i = 0; i < cv_method_count; i++) {
        const cv_method_info *m = &cv_methods[i];
        json_t *op, *x, *params, *roles;
        char method[8];
        bool has_key = false;
        size_t j;

        if (m->http_method == NULL)
            continue;
        n_bindings++;
        for (j = 0; m->http_method[j] != '\0' && j + 1 < sizeof(method); j++)
            method[j] = (char)tolower((unsigned char)m->http_method[j]);
        method[j] = '\0';
        {
            /* A rest-of-path `{name*}` is `{name}` in OpenAPI. */
            char key[256];
            size_t k = 0;

            for (size_t c = 0; m->path[c] != '\0' && k + 1 < sizeof(key); c++)
                if (m->path[c] != '*')
                    key[k++] = m->path[c];
            key[k] = '\0';
            op = json_object_get(json_object_get(paths, key), method);
        }
        if (!json_is_object(op))
            fail_msg("openapi lacks %s %s", m->http_method, m->path);
        cv_test_assert_str(op, "operationId", m->name);
        cv_test_assert_str(op, "summary", m->summary);
        x = json_object_get(op, "x-cavra-rpc");
        cv_test_assert_str(x, "method", m->name);
        cv_test_assert_str(x, "service", cv_service_name(m->service));
        cv_test_assert_str(x, "transaction", cv_tx_mode_name(m->tx));
        cv_test_assert_bool(x, "keyed", m->keyed);
        cv_test_assert_bool(x, "stores_record", m->stores_record);
        cv_test_assert_str(x, "request", m->request->name);
        cv_test_assert_str(x, "reply", m->reply->name);
        roles = json_object_get(x, "roles");
        assert_true(json_is_array(roles));
        for (unsigned int bit = 1; bit <= CV_ROLE_ANY; bit <<= 1) {
            bool listed = false;

            for (size_t k = 0; k < json_array_size(roles); k++)
                listed |= strcmp(json_string_value(json_array_get(roles, k)),
                                 cv_role_name(bit)) == 0;
            if (listed != (((m->roles | CV_ROLE_ADMIN) & bit) != 0))
                fail_msg("%s: role %s listed %d", m->name, cv_role_name(bit),
                         (int)listed);
        }
        params = json_object_get(op, "parameters");
        for (size_t k = 0; k < json_array_size(params); k++)
            has_key |=
                strcmp(cv_test_json_str(json_array_get(params, k), "name"),
                       "Idempotency-Key") == 0;
        if (has_key != m->keyed)
            fail_msg("%s: Idempotency-Key documented %d, keyed %d", m->name,
                     (int)has_key, (int)m->keyed);
        assert_int_equal(
            json_object_get(json_object_get(op, "responses"), "201") != NULL,
            m->stores_record);
        if (m->timeout_ms > 0)
            cv_test_assert_int(x, "timeout_ms", m->timeout_ms);
    }
    /* Nothing else: the registry's bindings plus the five built-ins. */
    {
        const char *path;
        json_t *item;

        json_object_foreach(paths, path, item)
        {
            n_ops += json_object_size(item);
        }
    }
    assert_int_equal(n_ops, n_bindings + 5);
    cv_http_response_free(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_retry_plan_literal_wins),
        cmocka_unit_test(test_routes_every_binding_405_allow),
        cmocka_unit_test(test_routes_openapi_is_the_registry),
    };

    return cmocka_run_group_tests_name("routes", tests, e2e_stack_start,
                                       e2e_stack_stop);
}
