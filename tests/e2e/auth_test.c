/*
 * auth_test.c -- end-to-end tests of bearer tokens and roles through the
 * gateway (docs/api.md and 8): 401 without a valid token, 403 for a
 * role the route does not allow (and nothing stored), the verified actor
 * in every reply, overriding self-declared generated_by/acknowledged_by,
 * reads open to every role, admin allowed everything, and no token ever
 * echoed in a response or written to a log.
 *
 * The group setup writes a token file (only SHA-256 hashes of the made-up
 * tokens below) and starts the stack with CAVRA_TOKEN_FILE pointing at it.
 *
 * Run: ctest -R e2e.auth, or the binary alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cv_id.h"
#include "cv_test_api.h"

#define P                                                                      \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery"
#define AUTH_PLAN_PATH P "/recovery-escalation-plan"
#define AUTH_DASHBOARD                                                         \
    "/runtime/go-pilot/rollback-drill-notifications/dashboard"
#define AUTH_STREAM    "/runtime/go-pilot/rollback-drill-notifications"
#define AUTH_PLAN_BODY "{\"escalation_routes\": [{\"provider\": \"slack\"}]}"
#define AUTH_REQUIRED                                                          \
    "a bearer token is required (Authorization: Bearer <token>)"
#define AUTH_INVALID "the bearer token is not valid"

/* Made-up tokens; the file holds only their hashes. */
enum { RITA, PAUL, AUDREY, ADA, AUTH_N_USERS };
static const struct {
    const char *token, *actor, *role;
} auth_users[AUTH_N_USERS] = {
    [RITA] = {"rita-e2e-token-5f1d0c", "rita", "release_manager"},
    [PAUL] = {"paul-e2e-token-9a7b3e", "paul", "platform_owner"},
    [AUDREY] = {"audrey-e2e-token-2c8e41", "audrey", "auditor"},
    [ADA] = {"ada-e2e-token-d04f77", "ada", "admin"},
};

static cv_test_stack auth_stack;
static char auth_dir[64];
static char auth_file[128];

/* ---- HTTP ------------------------------------------------------------- */

/* A response with every header line kept, to look for leaked tokens. */
typedef struct auth_response {
    long status;
    char *body;
    size_t len, cap;
    char headers[8192];
    json_t *json;
    char request_id[160];
} auth_response;

static size_t
auth_body_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    auth_response *r = arg;
    size_t n = size * nmemb;

    if (r->len + n + 1 > r->cap) {
        size_t cap = (r->len + n + 1) * 2;
        char *b = realloc(r->body, cap);

        if (b == NULL)
            return 0;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static size_t
auth_header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    auth_response *r = arg;
    size_t n = size * nmemb, have = strlen(r->headers);

    if (strncasecmp(data, "X-Request-Id:", 13) == 0) {
        size_t b = 13, e = n;

        while (b < e && data[b] == ' ')
            b++;
        while (e > b && (data[e - 1] == '\r' || data[e - 1] == '\n'))
            e--;
        snprintf(r->request_id, sizeof(r->request_id), "%.*s", (int)(e - b),
                 data + b);
    }
    if (have + n < sizeof(r->headers)) {
        memcpy(r->headers + have, data, n);
        r->headers[have + n] = '\0';
    }
    return n;
}

static void
auth_response_free(auth_response *r)
{
    free(r->body);
    if (r->json != NULL)
        json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* Fails when text carries any token, or any token's full hash. */
static void
auth_assert_no_token(const char *what, const char *text)
{
    char sha[CV_SHA256_HEX_LEN + 1];

    for (int u = 0; u < AUTH_N_USERS; u++) {
        cv_sha256_hex(auth_users[u].token, strlen(auth_users[u].token), sha);
        if (strstr(text, auth_users[u].token) != NULL)
            fail_msg("%s carries %s's token", what, auth_users[u].actor);
        if (strstr(text, sha) != NULL)
            fail_msg("%s carries %s's token hash", what, auth_users[u].actor);
    }
    if (strstr(text, "not-a-real-token-0b1e") != NULL)
        fail_msg("%s carries a presented token", what);
}

/*
 * Sends method path as user (-1: no Authorization header) with a JSON body
 * (may be NULL). Checks every response: an X-Request-Id, no 5xx, and no
 * token in its headers or body.
 */
static void
auth_send_header(const char *method, const char *path, const char *authz,
                 const char *body, auth_response *r)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    char url[1024];
    CURLcode cc;

    memset(r, 0, sizeof(*r));
    assert_non_null(curl);
    snprintf(url, sizeof(url), "%s%s", auth_stack.base_url, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(curl, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, auth_body_cb);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, auth_header_cb);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (body != NULL) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)strlen(body));
    }
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (authz != NULL) {
        char line[512];

        snprintf(line, sizeof(line), "Authorization: %s", authz);
        hdrs = curl_slist_append(hdrs, line);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    cc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    if (cc != CURLE_OK)
        fail_msg("%s %s: %s", method, path, curl_easy_strerror(cc));
    if (r->body == NULL)
        r->body = strdup("");
    if (r->body[0] != '\0')
        r->json = json_loads(r->body, JSON_DECODE_ANY, NULL);
    if (r->request_id[0] == '\0')
        fail_msg("%s %s: %ld without X-Request-Id", method, path, r->status);
    if (r->status >= 500)
        fail_msg("%s %s: server error %ld: %s", method, path, r->status,
                 r->body);
    auth_assert_no_token("a response header", r->headers);
    auth_assert_no_token("a response body", r->body);
}

static void
auth_send(const char *method, const char *path, int user, const char *body,
          auth_response *r)
{
    char authz[256];

    if (user < 0) {
        auth_send_header(method, path, NULL, body, r);
        return;
    }
    snprintf(authz, sizeof(authz), "Bearer %s", auth_users[user].token);
    auth_send_header(method, path, authz, body, r);
}

/* ---- assertions ------------------------------------------------------- */

static json_t *
auth_get(json_t *root, const char *a, const char *b)
{
    json_t *v = json_object_get(root, a);

    return b != NULL ? json_object_get(v, b) : v;
}

static const char *
auth_str(json_t *root, const char *a, const char *b)
{
    json_t *v = auth_get(root, a, b);

    if (!json_is_string(v))
        fail_msg("%s%s%s is not a string", a, b ? "." : "", b ? b : "");
    return json_string_value(v);
}

static void
auth_assert_error(const auth_response *r, long status, const char *code,
                  const char *detail)
{
    if (r->status != status)
        fail_msg("expected %ld, got %ld: %s", status, r->status, r->body);
    if (!json_is_object(r->json))
        fail_msg("error body is not JSON: %s", r->body);
    assert_string_equal(auth_str(r->json, "code", NULL), code);
    assert_string_equal(auth_str(r->json, "detail", NULL), detail);
    assert_string_equal(auth_str(r->json, "request_id", NULL), r->request_id);
    assert_int_equal(json_object_size(r->json), 3);
}

/* "actor": {"actor": name, "subject": "token:<12 hex>", "roles": [role]} */
static void
auth_assert_actor(const auth_response *r, int user)
{
    json_t *actor = json_object_get(r->json, "actor");
    json_t *roles = json_object_get(actor, "roles");
    char sha[CV_SHA256_HEX_LEN + 1], subject[32];

    if (!json_is_object(actor))
        fail_msg("reply without an actor: %s", r->body);
    cv_sha256_hex(auth_users[user].token, strlen(auth_users[user].token), sha);
    snprintf(subject, sizeof(subject), "token:%.12s", sha);
    assert_string_equal(auth_str(actor, "actor", NULL), auth_users[user].actor);
    assert_string_equal(auth_str(actor, "subject", NULL), subject);
    assert_true(json_is_array(roles));
    assert_int_equal(json_array_size(roles), 1);
    assert_string_equal(json_string_value(json_array_get(roles, 0)),
                        auth_users[user].role);
    assert_int_equal(json_object_size(actor), 3);
}

/* A request that must be rejected with status/code/detail, storing
 * nothing. */
static void
auth_reject(const char *method, const char *path, const char *authz,
            const char *body, long status, const char *code, const char *detail)
{
    auth_response r;
    cv_test_counts before;
    char what[256];

    cv_test_counts_snapshot(&before);
    auth_send_header(method, path, authz, body, &r);
    auth_assert_error(&r, status, code, detail);
    auth_response_free(&r);
    snprintf(what, sizeof(what), "rejected %s %.200s", method, path);
    cv_test_counts_unchanged(&before, what);
}

static const char *
auth_bearer(int user)
{
    static char h[128];

    snprintf(h, sizeof(h), "Bearer %s", auth_users[user].token);
    return h;
}

/* Records a plan as user; returns its id (static buffer). */
static const char *
auth_record_plan(int user)
{
    static char id[128];
    auth_response r;

    auth_send("POST", AUTH_PLAN_PATH, user, AUTH_PLAN_BODY, &r);
    if (r.status != 201)
        fail_msg("recording a plan as %s: %ld %s", auth_users[user].actor,
                 r.status, r.body);
    snprintf(id, sizeof(id), "%s", auth_str(r.json, "plan", "plan_id"));
    auth_response_free(&r);
    return id;
}

static const char *
auth_plan_path(const char *plan_id, const char *suffix)
{
    static char path[512];

    snprintf(path, sizeof(path), P "/recovery-escalations/%s%s", plan_id,
             suffix);
    return path;
}

/* ---- setup ------------------------------------------------------------ */

static int
auth_setup(void **state)
{
    char sha[CV_SHA256_HEX_LEN + 1];
    FILE *f;
    int rv;

    (void)state;
    snprintf(auth_dir, sizeof(auth_dir), "/tmp/cvauth-XXXXXX");
    if (mkdtemp(auth_dir) == NULL)
        return -1;
    snprintf(auth_file, sizeof(auth_file), "%s/tokens", auth_dir);
    if ((f = fopen(auth_file, "w")) == NULL)
        return -1;
    fprintf(f, "# CAVRA e2e tokens: sha256 actor roles\n\n");
    for (int u = 0; u < AUTH_N_USERS; u++) {
        cv_sha256_hex(auth_users[u].token, strlen(auth_users[u].token), sha);
        fprintf(f, "%s %s %s\n", sha, auth_users[u].actor, auth_users[u].role);
    }
    if (fclose(f) != 0)
        return -1;
    setenv("CAVRA_TOKEN_FILE", auth_file, 1);
    rv = cv_test_stack_start(&auth_stack, CV_STACK_ALL);
    unsetenv("CAVRA_TOKEN_FILE");
    return rv;
}

static int
auth_teardown(void **state)
{
    int rv;

    (void)state;
    rv = cv_test_stack_stop(&auth_stack);
    if (rv != 0)
        fprintf(stderr, "the stack did not stop cleanly\n");
    unlink(auth_file);
    rmdir(auth_dir);
    return rv;
}

/* ---- tests ------------------------------------------------------------ */

static void
test_auth_no_token_401(void **state)
{
    auth_response r;

    (void)state;
    auth_reject("POST", AUTH_PLAN_PATH, NULL, AUTH_PLAN_BODY, 401,
                "UNAUTHENTICATED", AUTH_REQUIRED);
    /* Reads need a role too. */
    auth_reject("GET", AUTH_DASHBOARD, NULL, NULL, 401, "UNAUTHENTICATED",
                AUTH_REQUIRED);
    auth_reject("GET",
                auth_plan_path("gordackrecoveryesc-0000000000000000", ""), NULL,
                NULL, 401, "UNAUTHENTICATED", AUTH_REQUIRED);
    /* Another scheme, or an empty token, is no bearer token. */
    auth_reject("POST", AUTH_PLAN_PATH, "Basic cGF1bDpwYXVs", AUTH_PLAN_BODY,
                401, "UNAUTHENTICATED", AUTH_REQUIRED);
    auth_reject("POST", AUTH_PLAN_PATH, "Bearer", AUTH_PLAN_BODY, 401,
                "UNAUTHENTICATED", AUTH_REQUIRED);
    auth_reject("POST", AUTH_PLAN_PATH, auth_users[PAUL].token, AUTH_PLAN_BODY,
                401, "UNAUTHENTICATED", AUTH_REQUIRED);
    /* The process probes stay open (orchestrators have no token). */
    auth_send("GET", "/healthz", -1, NULL, &r);
    assert_int_equal(r.status, 200);
    auth_response_free(&r);
    auth_send("GET", "/readyz", -1, NULL, &r);
    assert_int_equal(r.status, 200);
    auth_response_free(&r);
}

static void
test_auth_unknown_token_401(void **state)
{
    char sha[CV_SHA256_HEX_LEN + 1], h[128];

    (void)state;
    auth_reject("POST", AUTH_PLAN_PATH, "Bearer not-a-real-token-0b1e",
                AUTH_PLAN_BODY, 401, "UNAUTHENTICATED", AUTH_INVALID);
    auth_reject("GET", AUTH_DASHBOARD, "Bearer not-a-real-token-0b1e", NULL,
                401, "UNAUTHENTICATED", AUTH_INVALID);
    /* The stored hash is not a token. */
    cv_sha256_hex(auth_users[ADA].token, strlen(auth_users[ADA].token), sha);
    snprintf(h, sizeof(h), "Bearer %s", sha);
    auth_reject("POST", AUTH_PLAN_PATH, h, AUTH_PLAN_BODY, 401,
                "UNAUTHENTICATED", AUTH_INVALID);
}

static void
test_auth_role_mismatch_403(void **state)
{
    const char *plan_id;

    (void)state;
    auth_reject("POST", AUTH_PLAN_PATH, auth_bearer(AUDREY), AUTH_PLAN_BODY,
                403, "PERMISSION_DENIED",
                "actor audrey lacks the role for this call (needs "
                "platform_owner or service or admin)");
    auth_reject("POST", AUTH_PLAN_PATH, auth_bearer(RITA), AUTH_PLAN_BODY, 403,
                "PERMISSION_DENIED",
                "actor rita lacks the role for this call (needs "
                "platform_owner or service or admin)");
    plan_id = auth_record_plan(PAUL);
    auth_reject("POST", auth_plan_path(plan_id, "/acknowledgements"),
                auth_bearer(PAUL), "{\"provider\": \"slack\"}", 403,
                "PERMISSION_DENIED",
                "actor paul lacks the role for this call (needs "
                "release_manager or admin)");
    auth_reject("POST", auth_plan_path(plan_id, "/acknowledgements"),
                auth_bearer(AUDREY), "{\"provider\": \"slack\"}", 403,
                "PERMISSION_DENIED",
                "actor audrey lacks the role for this call (needs "
                "release_manager or admin)");
    auth_reject("POST", P "/recovery-executive-report/schedule-run",
                auth_bearer(PAUL), "{}", 403, "PERMISSION_DENIED",
                "actor paul lacks the role for this call (needs executive "
                "or admin)");
    /* The role check comes before the body: a bad body is still a 403. */
    auth_reject("POST", AUTH_PLAN_PATH, auth_bearer(AUDREY), "{not json", 403,
                "PERMISSION_DENIED",
                "actor audrey lacks the role for this call (needs "
                "platform_owner or service or admin)");
}

/* Verifying the evidence chain walks the whole store: auditors and
 * admins only; everyone else gets 403 before the walk starts. */
static void
test_auth_verify_auditor_only(void **state)
{
    (void)state;
    auth_reject("GET", "/runtime/evidence/verify", auth_bearer(RITA), NULL, 403,
                "PERMISSION_DENIED",
                "actor rita lacks the role for this call (needs auditor "
                "or admin)");
    auth_reject("GET", "/runtime/evidence/verify", auth_bearer(PAUL), NULL, 403,
                "PERMISSION_DENIED",
                "actor paul lacks the role for this call (needs auditor "
                "or admin)");
    for (int u = AUDREY; u <= ADA; u++) {
        auth_response r;

        auth_send("GET", "/runtime/evidence/verify", u, NULL, &r);
        if (r.status != 200)
            fail_msg("%s verifying: %ld %s", auth_users[u].actor, r.status,
                     r.body);
        assert_true(json_is_boolean(json_object_get(r.json, "valid")));
        auth_response_free(&r);
    }
}

static void
test_auth_verified_actor_overrides_generated_by(void **state)
{
    auth_response r;
    const char *id;

    (void)state;
    auth_send("POST", AUTH_PLAN_PATH, PAUL,
              "{\"generated_by\": \"mallory\", \"escalation_routes\": "
              "[{\"provider\": \"slack\"}, {\"provider\": \"jira\"}]}",
              &r);
    if (r.status != 201)
        fail_msg("expected 201, got %ld: %s", r.status, r.body);
    auth_assert_actor(&r, PAUL);
    assert_string_equal(auth_str(r.json, "plan", "generated_by"), "paul");
    id = auth_str(r.json, "plan", "plan_id");
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM escalation_plans WHERE "
                      "plan_id = $1 AND generated_by = 'paul'",
                      id),
        1);
    assert_int_equal(cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                                   "record_id = $1 AND actor = 'paul'",
                                   id),
                     1);
    assert_int_equal(cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                                   "record_id = $1 AND record::text LIKE "
                                   "'%mallory%'",
                                   id),
                     0);
    auth_response_free(&r);

    /* Without generated_by the verified actor still names the plan. */
    auth_send("POST", AUTH_PLAN_PATH, PAUL, AUTH_PLAN_BODY, &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(auth_str(r.json, "plan", "generated_by"), "paul");
    auth_assert_actor(&r, PAUL);
    auth_response_free(&r);
}

static void
test_auth_verified_actor_acknowledges(void **state)
{
    char plan_id[128];
    auth_response r;
    const char *aid;

    (void)state;
    snprintf(plan_id, sizeof(plan_id), "%s", auth_record_plan(PAUL));

    /* Someone else named in the body: the verified actor wins. */
    auth_send("POST", auth_plan_path(plan_id, "/acknowledgements"), RITA,
              "{\"provider\": \"slack\", \"acknowledged_by\": \"mallory\"}",
              &r);
    if (r.status != 201)
        fail_msg("expected 201, got %ld: %s", r.status, r.body);
    auth_assert_actor(&r, RITA);
    assert_string_equal(auth_str(r.json, "acknowledgement", "acknowledged_by"),
                        "rita");
    aid = auth_str(r.json, "acknowledgement", "acknowledgement_id");
    assert_int_equal(cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                                   "record_id = $1 AND actor = 'rita'",
                                   aid),
                     1);
    auth_response_free(&r);

    /* No acknowledged_by at all: not required once the actor is known. */
    auth_send("POST", auth_plan_path(plan_id, "/acknowledgements"), RITA,
              "{\"provider\": \"slack\", \"acknowledgement_state\": "
              "\"resolved\"}",
              &r);
    if (r.status != 201)
        fail_msg("expected 201, got %ld: %s", r.status, r.body);
    auth_assert_actor(&r, RITA);
    assert_string_equal(auth_str(r.json, "acknowledgement", "acknowledged_by"),
                        "rita");
    assert_string_equal(
        auth_str(r.json, "acknowledgement", "acknowledgement_state"),
        "resolved");
    auth_response_free(&r);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM evidence_events WHERE kind = "
                      "'recovery_escalation_ack' AND plan_id = $1 AND "
                      "record->>'acknowledged_by' = 'rita'",
                      plan_id),
        2);
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM evidence_events WHERE kind = "
                      "'recovery_escalation_ack' AND plan_id = $1 AND "
                      "record->>'acknowledged_by' = 'mallory'",
                      plan_id),
        0);
    /* Evidence says who and through what: the token's actor, carried by
     * the gateway's signed envelope. */
    assert_int_equal(
        cv_test_count("SELECT count(*) FROM evidence_events WHERE "
                      "plan_id = $1 AND kind = 'recovery_escalation_ack' AND "
                      "actor = 'rita' AND principal = 'gateway'",
                      plan_id),
        2);
}

static void
test_auth_any_role_reads(void **state)
{
    char plan_id[128];

    (void)state;
    snprintf(plan_id, sizeof(plan_id), "%s", auth_record_plan(PAUL));
    for (int u = 0; u < AUTH_N_USERS; u++) {
        auth_response r;

        auth_send("GET", auth_plan_path(plan_id, ""), u, NULL, &r);
        if (r.status != 200)
            fail_msg("%s reading the plan: %ld %s", auth_users[u].actor,
                     r.status, r.body);
        assert_string_equal(auth_str(r.json, "plan", "plan_id"), plan_id);
        assert_string_equal(auth_str(r.json, "plan", "generated_by"), "paul");
        auth_assert_actor(&r, u);
        auth_response_free(&r);

        auth_send("GET", AUTH_DASHBOARD, u, NULL, &r);
        if (r.status != 200)
            fail_msg("%s reading the dashboard: %ld %s", auth_users[u].actor,
                     r.status, r.body);
        auth_response_free(&r);

        auth_send("GET", auth_plan_path(plan_id, "/trace"), u, NULL, &r);
        if (r.status != 200)
            fail_msg("%s reading the trace: %ld %s", auth_users[u].actor,
                     r.status, r.body);
        auth_response_free(&r);
    }
    /* A read of an unknown plan is a 404 for a reader, not a 403. */
    {
        auth_response r;

        auth_send("GET",
                  auth_plan_path("gordackrecoveryesc-0000000000000000", ""),
                  AUDREY, NULL, &r);
        auth_assert_error(&r, 404, "NOT_FOUND",
                          "recovery escalation plan not found");
        auth_response_free(&r);
    }
}

static void
test_auth_admin_everything(void **state)
{
    auth_response r;
    char plan_id[128];

    (void)state;
    auth_send("POST", AUTH_PLAN_PATH, ADA,
              "{\"generated_by\": \"mallory\", \"escalation_routes\": "
              "[{\"provider\": \"slack\"}]}",
              &r);
    if (r.status != 201)
        fail_msg("admin recording a plan: %ld %s", r.status, r.body);
    auth_assert_actor(&r, ADA);
    assert_string_equal(auth_str(r.json, "plan", "generated_by"), "ada");
    snprintf(plan_id, sizeof(plan_id), "%s",
             auth_str(r.json, "plan", "plan_id"));
    auth_response_free(&r);

    auth_send("POST", auth_plan_path(plan_id, "/acknowledgements"), ADA,
              "{\"provider\": \"slack\"}", &r);
    if (r.status != 201)
        fail_msg("admin acknowledging: %ld %s", r.status, r.body);
    auth_assert_actor(&r, ADA);
    assert_string_equal(auth_str(r.json, "acknowledgement", "acknowledged_by"),
                        "ada");
    auth_response_free(&r);

    static const char *const reads[] = {AUTH_DASHBOARD, AUTH_STREAM};

    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        auth_send("GET", reads[i], ADA, NULL, &r);
        if (r.status != 200)
            fail_msg("admin GET %s: %ld %s", reads[i], r.status, r.body);
        auth_response_free(&r);
    }
    auth_send("GET", auth_plan_path(plan_id, ""), ADA, NULL, &r);
    assert_int_equal(r.status, 200);
    auth_assert_actor(&r, ADA);
    auth_response_free(&r);

    /* Admin passes the role check of every other route too: the answer is
     * the body check that comes after it, never a 401 or 403. */
    {
        const char *posts[] = {
            P "/recovery-escalations/retry-plan",
            P "/recovery-executive-report/schedule-run",
            auth_plan_path(plan_id, "/delivery-attempts"),
        };

        for (size_t i = 0; i < sizeof(posts) / sizeof(posts[0]); i++) {
            auth_send("POST", posts[i], ADA, "[]", &r);
            auth_assert_error(&r, 400, "INVALID_ARGUMENT",
                              "request body must be a JSON object");
            auth_response_free(&r);
        }
    }
}

static void
test_auth_token_never_echoed_or_logged(void **state)
{
    static const char *const logs[] = {"gateway", "ack", "retry", "report"};
    auth_response r;

    (void)state;
    /* Every response above was already checked; add the ones most likely
     * to echo: errors about the token itself, with a request id. */
    auth_send_header("POST", AUTH_PLAN_PATH, "Bearer not-a-real-token-0b1e",
                     "{\"generated_by\": \"x\"}", &r);
    assert_int_equal(r.status, 401);
    auth_response_free(&r);
    auth_send("POST", AUTH_PLAN_PATH, AUDREY, AUTH_PLAN_BODY, &r);
    assert_int_equal(r.status, 403);
    auth_response_free(&r);
    auth_send("POST", AUTH_PLAN_PATH, PAUL, "{}", &r);
    assert_int_equal(r.status, 400);
    auth_response_free(&r);

    /* No process log names a token (docs/api.md). */
    for (size_t i = 0; i < sizeof(logs) / sizeof(logs[0]); i++) {
        char path[400], what[64];
        FILE *f;
        char *text;
        long n;

        snprintf(path, sizeof(path), "%s/%s.log", auth_stack.dir, logs[i]);
        if ((f = fopen(path, "rb")) == NULL)
            continue;
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        text = calloc(1, (size_t)n + 1);
        assert_non_null(text);
        assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
        fclose(f);
        snprintf(what, sizeof(what), "the %s log", logs[i]);
        auth_assert_no_token(what, text);
        free(text);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_no_token_401),
        cmocka_unit_test(test_auth_unknown_token_401),
        cmocka_unit_test(test_auth_role_mismatch_403),
        cmocka_unit_test(test_auth_verify_auditor_only),
        cmocka_unit_test(test_auth_verified_actor_overrides_generated_by),
        cmocka_unit_test(test_auth_verified_actor_acknowledges),
        cmocka_unit_test(test_auth_any_role_reads),
        cmocka_unit_test(test_auth_admin_everything),
        cmocka_unit_test(test_auth_token_never_echoed_or_logged),
    };

    return cmocka_run_group_tests_name("auth", tests, auth_setup,
                                       auth_teardown);
}
