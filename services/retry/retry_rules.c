/*
 * retry_rules.c -- validation and record building for delivery attempts,
 * retry policies, per-pair retry decisions and retry plans. No I/O: the
 * handlers in retry_rpc.c load what this needs and store what it builds.
 */
#include "retry_rules.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_id.h"
#include "cv_record.h"
#include "cv_time.h"
#include "cv_transcode.h"
#include "cv_validate.h"

/* The latest time cv_time_format writes with a four-digit year:
 * 9999-12-31T23:59:59.999999Z. next_retry_at never goes past it. */
#define RETRY_TIME_MAX_US 253402300799999999LL
/* Attempt times: at most 5 minutes ahead of us, and not before 2000. */
#define RETRY_TIME_SKEW_US (5LL * 60 * 1000000)
#define RETRY_TIME_MIN_US  946684800000000LL

static const char *const retry_plan_controls[] = {
    "public-safe metadata only: no connector credentials, private "
    "endpoints, ticket payloads or customer incident text",
    "only failed deliveries after a pair's latest successful delivery "
    "count toward its retries",
    "HTTP 4xx failures other than 408 and 429 are not retried",
    "pairs whose acknowledgement is dismissed or resolved are not retried",
    "retries stop once max_retry_attempts consecutive failures are reached",
    "every stored record appends one event to the append-only evidence "
    "stream",
};

/*
 * Parses an optional RFC 3339 field into *us and its normalised text.
 * An attempt happened in the past: a time more than RETRY_TIME_SKEW_US
 * after now (clock skew allowance) or before 2000 is refused, since it
 * would order the pair's attempts wrongly forever (a failure dated 9999
 * hides every later one from retry planning). Returns 0 (with *given
 * false when absent) or CV_INVALID_ARGUMENT.
 */
static int
retry_time_field(const char *field, const char *in, int64_t now_us, bool *given,
                 int64_t *us, char text[CV_TIME_MAX], cv_error *err)
{
    *given = false;
    if (in == NULL)
        return 0;
    if (cv_time_parse(in, us) != 0)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "%s must be an RFC 3339 timestamp", field);
    if (*us > now_us + RETRY_TIME_SKEW_US)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "%s must not be more than 5 minutes in the future",
                            field);
    if (*us < RETRY_TIME_MIN_US)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "%s must not be before 2000-01-01T00:00:00Z",
                            field);
    *given = true;
    cv_time_format(*us, text);
    return 0;
}

int
retry_delivery_build(const Cv__RecordDeliveryRequest *req,
                     const char *request_id, int64_t now_us,
                     Cv__DeliveryRecord **out, int64_t *attempt_at_us,
                     cv_error *err)
{
    Cv__DeliveryRecord *d;
    char provider[RETRY_PROVIDER_MAX + 1];
    char started[CV_TIME_MAX], completed[CV_TIME_MAX], created[CV_TIME_MAX];
    bool has_started, has_completed;
    int64_t started_us = 0, completed_us = 0;
    int redactions = 0;
    int rv;

    *out = NULL;
    /* The order of docs/api.md's fields; the first fault is reported. */
    if ((rv = cv_normalize_ident("provider", req->provider, RETRY_PROVIDER_MAX,
                                 provider, sizeof(provider), err)) != 0)
        return rv;
    if (!req->has_success)
        return cv_error_set(err, CV_INVALID_ARGUMENT, "success is required");
    if (req->has_status_code &&
        (rv = cv_validate_int_range("status_code", req->status_code, 0,
                                    RETRY_STATUS_CODE_MAX, err)) != 0)
        return rv;
    if (req->has_attempt_count &&
        (rv = cv_validate_int_range("attempt_count", req->attempt_count, 1,
                                    RETRY_ATTEMPT_COUNT_MAX, err)) != 0)
        return rv;
    if ((rv = retry_time_field("started_at", req->started_at, now_us,
                               &has_started, &started_us, started, err)) != 0 ||
        (rv = retry_time_field("completed_at", req->completed_at, now_us,
                               &has_completed, &completed_us, completed,
                               err)) != 0)
        return rv;
    if (has_started && has_completed && completed_us < started_us)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "completed_at must not be before started_at");

    if ((d = malloc(sizeof(*d))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    cv__delivery_record__init(d);
    if ((rv = cv_record_text("error", req->error, RETRY_ERROR_MAX, false,
                             &d->error, &redactions, err)) != 0)
        goto fail;

    cv_time_format(now_us, created);
    d->schema_version = strdup(RETRY_DELIVERY_SCHEMA);
    d->plan_id = cv_strdup0(req->plan_id);
    d->provider = strdup(provider);
    CV_SET(d, delivery_success, req->success != 0);
    if (req->has_status_code) {
        if ((d->status_codes = malloc(sizeof(int64_t))) == NULL) {
            rv = cv_error_set(err, CV_INTERNAL, "out of memory");
            goto fail;
        }
        d->status_codes[0] = req->status_code;
        d->n_status_codes = 1;
    }
    CV_SET(d, attempt_count, req->has_attempt_count ? req->attempt_count : 1);
    d->started_at = has_started ? strdup(started) : NULL;
    d->completed_at = has_completed ? strdup(completed) : NULL;
    d->created_at = strdup(created);
    d->connector_delivery_source = strdup(RETRY_DELIVERY_SOURCE);
    d->metadata_kind = strdup(RETRY_DELIVERY_METADATA_KIND);
    CV_SET(d, redaction_count, redactions);
    if (d->schema_version == NULL || d->provider == NULL ||
        d->created_at == NULL || d->connector_delivery_source == NULL ||
        d->metadata_kind == NULL || (has_started && d->started_at == NULL) ||
        (has_completed && d->completed_at == NULL) ||
        (req->plan_id != NULL && d->plan_id == NULL) ||
        cv_record_derive_id(&d->base, request_id, RETRY_DELIVERY_ID_PREFIX,
                            &d->delivery_id) != 0) {
        rv = cv_error_set(err, CV_INTERNAL, "out of memory");
        goto fail;
    }
    *attempt_at_us = has_completed ? completed_us
                     : has_started ? started_us
                                   : now_us;
    *out = d;
    return 0;

fail:
    protobuf_c_message_free_unpacked(&d->base, NULL);
    return rv;
}

/* ---- policy ----------------------------------------------------------- */

/*
 * Folds a field and its alias: *name is the field name to use in messages
 * (the one the client gave; the canonical one when both or none).
 * Returns 0, or CV_INVALID_ARGUMENT when both are given and differ.
 */
static int
retry_alias_int(const char *field, bool has, int64_t v, const char *alias,
                bool has_alias, int64_t alias_v, bool *given, int64_t *out,
                const char **name, cv_error *err)
{
    *given = has || has_alias;
    *name = has || !has_alias ? field : alias;
    if (has && has_alias && v != alias_v)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "%s and its alias %s must not differ", field,
                            alias);
    *out = has ? v : alias_v;
    return 0;
}

static int
retry_alias_double(const char *field, bool has, double v, const char *alias,
                   bool has_alias, double alias_v, bool *given, double *out,
                   const char **name, cv_error *err)
{
    *given = has || has_alias;
    *name = has || !has_alias ? field : alias;
    /* != is also true for NaN: a NaN pair is rejected here or by range. */
    if (has && has_alias && v != alias_v)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "%s and its alias %s must not differ", field,
                            alias);
    *out = has ? v : alias_v;
    return 0;
}

int
retry_policy_resolve(const Cv__RetryPolicy *in, retry_policy *out,
                     cv_error *err)
{
    static const Cv__RetryPolicy none = CV__RETRY_POLICY__INIT;
    const char *name;
    bool given;
    /* Initialised for the compiler: the alias helpers set them whenever
     * `given` is true. */
    int64_t attempts = 0;
    double delay = 0.0, mult = 0.0;
    int rv;

    if (in == NULL)
        in = &none;
    if ((rv = retry_alias_int(
             "retry_policy.max_retry_attempts", in->has_max_retry_attempts,
             in->max_retry_attempts, "retry_policy.max_retries",
             in->has_max_retries, in->max_retries, &given, &attempts, &name,
             err)) != 0)
        return rv;
    if (!given)
        attempts = RETRY_MAX_ATTEMPTS_DEFAULT;
    else if ((rv = cv_validate_int_range(name, attempts, RETRY_MAX_ATTEMPTS_MIN,
                                         RETRY_MAX_ATTEMPTS_MAX, err)) != 0)
        return rv;
    out->max_retry_attempts = attempts;
    out->allow_immediate_retry =
        in->has_allow_immediate_retry && in->allow_immediate_retry;

    if ((rv = retry_alias_double(
             "retry_policy.retry_delay_minutes", in->has_retry_delay_minutes,
             in->retry_delay_minutes, "retry_policy.delay_minutes",
             in->has_delay_minutes, in->delay_minutes, &given, &delay, &name,
             err)) != 0)
        return rv;
    if (!given)
        delay = out->allow_immediate_retry ? RETRY_DELAY_IMMEDIATE
                                           : RETRY_DELAY_DEFAULT;
    else if ((rv = cv_validate_double_range(name, delay,
                                            out->allow_immediate_retry
                                                ? RETRY_DELAY_IMMEDIATE
                                                : RETRY_DELAY_MIN,
                                            RETRY_DELAY_MAX, err)) != 0)
        return rv;
    /* -0.0 is 0 for the range check; store 0 so the JSON says 0. */
    out->retry_delay_minutes = delay == 0.0 ? 0.0 : delay;

    if ((rv = retry_alias_double(
             "retry_policy.backoff_multiplier", in->has_backoff_multiplier,
             in->backoff_multiplier, "retry_policy.multiplier",
             in->has_multiplier, in->multiplier, &given, &mult, &name, err)) !=
        0)
        return rv;
    if (!given)
        mult = RETRY_MULTIPLIER_DEFAULT;
    else if ((rv = cv_validate_double_range(name, mult, RETRY_MULTIPLIER_MIN,
                                            RETRY_MULTIPLIER_MAX, err)) != 0)
        return rv;
    out->backoff_multiplier = mult;
    return 0;
}

int
retry_plan_request_check(const Cv__RetryPlanRequest *req,
                         const char *actor_name, retry_policy *policy,
                         char **generated_by, cv_error *err)
{
    int redactions = 0;
    int rv;

    *generated_by = NULL;
    if ((rv = cv_record_text("generated_by", req->generated_by,
                             RETRY_GENERATED_BY_MAX, false, generated_by,
                             &redactions, err)) != 0)
        return rv;
    if ((rv = retry_policy_resolve(req->retry_policy, policy, err)) != 0) {
        free(*generated_by);
        *generated_by = NULL;
        return rv;
    }
    if (actor_name != NULL || *generated_by == NULL) {
        free(*generated_by);
        *generated_by = strdup(actor_name != NULL ? actor_name : "console");
        if (*generated_by == NULL)
            return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    return 0;
}

/* ---- decisions -------------------------------------------------------- */

bool
retry_status_retryable(bool has_status_code, int64_t status_code)
{
    if (!has_status_code)
        return true;
    if (status_code >= 400 && status_code <= 499)
        return status_code == 408 || status_code == 429;
    return true;
}

double
retry_delay_for(const retry_policy *policy, int64_t retry_count)
{
    double d;

    if (policy->retry_delay_minutes <= 0.0)
        return 0.0;
    d = policy->retry_delay_minutes *
        pow(policy->backoff_multiplier,
            (double)(retry_count > 1 ? retry_count - 1 : 0));
    if (!isfinite(d) || d > RETRY_DELAY_CAP_MINUTES)
        d = RETRY_DELAY_CAP_MINUTES;
    return d;
}

int
retry_ack_state_from_name(const char *name)
{
    const ProtobufCEnumDescriptor *desc = &cv__ack_state__descriptor;

    if (name == NULL)
        return 0;
    for (unsigned i = 0; i < desc->n_values; i++) {
        const char *n = cv_enum_json_name(desc, desc->values[i].value);

        if (desc->values[i].value != 0 && n != NULL && strcmp(n, name) == 0)
            return desc->values[i].value;
    }
    return 0;
}

/* latest + delay minutes, rounded to the microsecond, clamped to the
 * latest writable time. */
static int64_t
retry_add_minutes(int64_t at_us, double minutes)
{
    double us = minutes * 60.0 * 1e6;

    if ((double)at_us + us >= (double)RETRY_TIME_MAX_US)
        return RETRY_TIME_MAX_US;
    return at_us + (int64_t)llround(us);
}

/* Orders attempts by time, then recording order. */
static int
retry_attempt_cmp(const void *a, const void *b)
{
    const retry_attempt *x = *(const retry_attempt *const *)a;
    const retry_attempt *y = *(const retry_attempt *const *)b;

    if (x->at_us != y->at_us)
        return x->at_us < y->at_us ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

int
retry_decide(const char *plan_id, const char *provider,
             const retry_attempt *attempts, size_t n, int ack_state,
             const retry_policy *policy, int64_t now_us,
             Cv__RetryDecision **out, cv_error *err)
{
    const retry_attempt **order = NULL, *latest;
    Cv__RetryDecision *d = NULL;
    char when[CV_TIME_MAX], reason[128];
    size_t first = 0, codes = 0;
    int64_t count, next_us;
    double delay;
    int action;

    *out = NULL;
    if (n == 0)
        return 0;
    if ((order = malloc(n * sizeof(*order))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++)
        order[i] = &attempts[i];
    qsort(order, n, sizeof(*order), retry_attempt_cmp);
    /* docs/api.md step 1: only the failures after the latest success. */
    for (size_t i = 0; i < n; i++)
        if (order[i]->success)
            first = i + 1;
    if (first == n) {
        free(order);
        return 0;
    }
    count = (int64_t)(n - first);
    latest = order[n - 1];
    delay = retry_delay_for(policy, count);
    next_us = retry_add_minutes(latest->at_us, delay);

    /* Step 3, in its order: the first suppress rule names the reason. */
    if (count >= policy->max_retry_attempts) {
        action = CV__RETRY_ACTION__RETRY_ACTION_SUPPRESS;
        snprintf(reason, sizeof(reason), "maximum retry attempts %lld reached",
                 (long long)policy->max_retry_attempts);
    } else if (!retry_status_retryable(latest->has_status_code,
                                       latest->status_code)) {
        action = CV__RETRY_ACTION__RETRY_ACTION_SUPPRESS;
        snprintf(reason, sizeof(reason), "status %lld is not retryable",
                 (long long)latest->status_code);
    } else if (ack_state == CV__ACK_STATE__ACK_STATE_DISMISSED ||
               ack_state == CV__ACK_STATE__ACK_STATE_RESOLVED) {
        action = CV__RETRY_ACTION__RETRY_ACTION_SUPPRESS;
        snprintf(reason, sizeof(reason),
                 "acknowledgement state %s closes the escalation",
                 cv_enum_json_name(&cv__ack_state__descriptor, ack_state));
    } else if (now_us < next_us) {
        action = CV__RETRY_ACTION__RETRY_ACTION_WAIT;
        snprintf(reason, sizeof(reason),
                 "retry delay %.15g minutes has not elapsed", delay);
    } else {
        action = CV__RETRY_ACTION__RETRY_ACTION_RETRY;
        snprintf(reason, sizeof(reason),
                 "failed recovery escalation delivery is eligible for retry");
    }

    if ((d = malloc(sizeof(*d))) == NULL)
        goto oom;
    cv__retry_decision__init(d);
    d->plan_id = cv_strdup0(plan_id);
    d->provider = cv_strdup0(provider);
    CV_SET(d, action, action);
    d->reason = strdup(reason);
    CV_SET(d, retry_count, count);
    CV_SET(d, max_retry_attempts, policy->max_retry_attempts);
    CV_SET(d, retry_delay_minutes, delay);
    d->latest_delivery_id = cv_strdup0(latest->delivery_id);
    cv_time_format(latest->at_us, when);
    d->latest_delivery_at = strdup(when);
    cv_time_format(next_us, when);
    d->next_retry_at = strdup(when);
    for (size_t i = first; i < n; i++)
        codes += order[i]->has_status_code;
    if (codes > 0 &&
        (d->failed_status_codes = calloc(codes, sizeof(int64_t))) != NULL) {
        for (size_t i = first; i < n; i++)
            if (order[i]->has_status_code)
                d->failed_status_codes[d->n_failed_status_codes++] =
                    order[i]->status_code;
    }
    if (ack_state != 0)
        CV_SET(d, acknowledgement_state, ack_state);
    if (d->plan_id == NULL || d->provider == NULL || d->reason == NULL ||
        d->latest_delivery_at == NULL || d->next_retry_at == NULL ||
        (latest->delivery_id != NULL && d->latest_delivery_id == NULL) ||
        (codes > 0 && d->failed_status_codes == NULL))
        goto oom;
    free(order);
    *out = d;
    return 0;

oom:
    free(order);
    if (d != NULL)
        protobuf_c_message_free_unpacked(&d->base, NULL);
    return cv_error_set(err, CV_INTERNAL, "out of memory");
}

/* ---- the plan --------------------------------------------------------- */

static int
retry_decision_cmp(const void *a, const void *b)
{
    const Cv__RetryDecision *x = *(Cv__RetryDecision *const *)a;
    const Cv__RetryDecision *y = *(Cv__RetryDecision *const *)b;
    int c = strcmp(x->plan_id, y->plan_id);

    return c != 0 ? c : strcmp(x->provider, y->provider);
}

int
retry_plan_build(const retry_policy *policy, const char *generated_by,
                 const char *plan_id, Cv__RetryDecision ***decisions, size_t n,
                 const char *request_id, int64_t now_us, Cv__RetryPlan **out,
                 cv_error *err)
{
    const size_t n_controls =
        sizeof(retry_plan_controls) / sizeof(retry_plan_controls[0]);
    Cv__RetryPlan *p;
    int64_t retry = 0, wait = 0, suppress = 0;
    bool controls_ok = true;
    char when[CV_TIME_MAX];

    *out = NULL;
    if ((p = malloc(sizeof(*p))) == NULL) {
        for (size_t i = 0; i < n; i++)
            protobuf_c_message_free_unpacked(&(*decisions)[i]->base, NULL);
        free(*decisions);
        *decisions = NULL;
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    cv__retry_plan__init(p);
    /* The plan owns the decisions from here on, whatever happens. */
    p->retry_decisions = *decisions;
    p->n_retry_decisions = n;
    *decisions = NULL;
    if (n > 0)
        qsort(p->retry_decisions, n, sizeof(*p->retry_decisions),
              retry_decision_cmp);
    for (size_t i = 0; i < n; i++) {
        switch (p->retry_decisions[i]->action) {
        case CV__RETRY_ACTION__RETRY_ACTION_RETRY:
            retry++;
            break;
        case CV__RETRY_ACTION__RETRY_ACTION_WAIT:
            wait++;
            break;
        default:
            suppress++;
            break;
        }
    }

    cv_time_format(now_us, when);
    p->schema_version = strdup(RETRY_PLAN_SCHEMA);
    p->product = strdup(CV_PRODUCT);
    p->generated_at = strdup(when);
    p->generated_by = cv_strdup0(generated_by);
    CV_SET(p, alert_level,
           retry > 0  ? CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL
           : wait > 0 ? CV__ALERT_LEVEL__ALERT_LEVEL_WARNING
                      : CV__ALERT_LEVEL__ALERT_LEVEL_HEALTHY);
    p->plan_id = cv_strdup0(plan_id);
    CV_SET(p, decision_count, (int64_t)n);
    CV_SET(p, retryable_count, retry);
    CV_SET(p, waiting_count, wait);
    CV_SET(p, suppressed_count, suppress);
    CV_SET(p, max_retry_attempts, policy->max_retry_attempts);
    CV_SET(p, base_retry_delay_minutes, policy->retry_delay_minutes);
    CV_SET(p, allow_immediate_retry, policy->allow_immediate_retry);
    CV_SET(p, backoff_multiplier, policy->backoff_multiplier);
    if ((p->controls = calloc(n_controls, sizeof(char *))) != NULL) {
        p->n_controls = n_controls;
        for (size_t i = 0; i < n_controls; i++)
            if ((p->controls[i] = strdup(retry_plan_controls[i])) == NULL)
                controls_ok = false;
    } else {
        controls_ok = false;
    }
    if (p->schema_version == NULL || p->product == NULL ||
        p->generated_at == NULL || p->generated_by == NULL || !controls_ok ||
        (plan_id != NULL && p->plan_id == NULL) ||
        cv_record_derive_id(&p->base, request_id, RETRY_PLAN_ID_PREFIX,
                            &p->retry_plan_id) != 0) {
        protobuf_c_message_free_unpacked(&p->base, NULL);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    *out = p;
    return 0;
}

Cv__RetryPlanMetadata *
retry_plan_metadata(const Cv__RetryPlan *plan)
{
    Cv__RetryPlanMetadata *m = malloc(sizeof(*m));

    if (m == NULL)
        return NULL;
    cv__retry_plan_metadata__init(m);
    m->metadata_kind = strdup(RETRY_PLAN_METADATA_KIND);
    m->session_id = strdup(plan->retry_plan_id);
    m->created_at = strdup(plan->generated_at);
    m->signer = strdup(RETRY_SIGNER);
    m->retry_plan_id = strdup(plan->retry_plan_id);
    CV_SET(m, alert_level, plan->alert_level);
    CV_SET(m, decision_count, plan->decision_count);
    CV_SET(m, retryable_count, plan->retryable_count);
    CV_SET(m, waiting_count, plan->waiting_count);
    CV_SET(m, suppressed_count, plan->suppressed_count);
    m->schema_version = strdup(CV_METADATA_SCHEMA);
    m->product = strdup(CV_PRODUCT);
    CV_SET(m, blocked_count, plan->suppressed_count);
    CV_SET(m, approval_required_count, plan->retryable_count);
    /* The original's keys only: ours are in the plan beside it. */
    m->recovery_escalation_delivery_retry_plan =
        (Cv__EmbeddedRetryPlan *)cv_message_view(
            &plan->base, &cv__embedded_retry_plan__descriptor);
    if (m->metadata_kind == NULL || m->session_id == NULL ||
        m->created_at == NULL || m->signer == NULL ||
        m->retry_plan_id == NULL || m->schema_version == NULL ||
        m->product == NULL ||
        m->recovery_escalation_delivery_retry_plan == NULL) {
        protobuf_c_message_free_unpacked(&m->base, NULL);
        return NULL;
    }
    return m;
}

/* ---- paging ------------------------------------------------------------ */

#define RETRY_CURSOR_TAG     "r1\n"
#define RETRY_CURSOR_TAG_LEN 3
#define RETRY_CURSOR_PLAIN_MAX                                                 \
    (RETRY_CURSOR_TAG_LEN + RETRY_CURSOR_PLAN_MAX + 1 + RETRY_PROVIDER_MAX)

char *
retry_cursor_encode(const char *plan_id, const char *provider)
{
    size_t lp = strlen(plan_id), lv = strlen(provider);
    size_t n = RETRY_CURSOR_TAG_LEN + lp + 1 + lv;
    char *plain = malloc(n + 1);
    char *out = malloc(2 * n + 1);

    if (plain == NULL || out == NULL) {
        free(plain);
        free(out);
        return NULL;
    }
    snprintf(plain, n + 1, RETRY_CURSOR_TAG "%s\n%s", plan_id, provider);
    cv_hex_encode(plain, n, out);
    free(plain);
    return out;
}

/* s[0..n) is 1..max characters, each allowed by the class. */
static bool
retry_cursor_part_ok(const char *s, size_t n, size_t max, bool upper)
{
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              (upper && c >= 'A' && c <= 'Z') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

int
retry_cursor_decode(const char *cursor, char **plan_id, char **provider,
                    cv_error *err)
{
    const size_t tag = RETRY_CURSOR_TAG_LEN;
    const size_t most = RETRY_CURSOR_PLAIN_MAX;
    unsigned char plain[RETRY_CURSOR_PLAIN_MAX];
    const char *p, *nl;
    size_t len, n, lp;
    char *again;
    bool same;

    *plan_id = NULL;
    *provider = NULL;
    len = cursor != NULL ? strlen(cursor) : 0;
    if (len == 0 || len % 2 != 0 || len / 2 > most)
        goto bad;
    n = len / 2;
    /* The tag, a plan id, a newline and a provider: 6 bytes at least. */
    if (n < tag + 3 || cv_hex_decode(cursor, n, plain) != 0 ||
        memcmp(plain, RETRY_CURSOR_TAG, tag) != 0)
        goto bad;
    p = (const char *)plain + tag;
    if ((nl = memchr(p, '\n', n - tag)) == NULL)
        goto bad;
    lp = (size_t)(nl - p);
    if (!retry_cursor_part_ok(p, lp, RETRY_CURSOR_PLAN_MAX, true) ||
        !retry_cursor_part_ok(nl + 1, n - tag - lp - 1, RETRY_PROVIDER_MAX,
                              false))
        goto bad;
    *plan_id = strndup(p, lp);
    *provider = strndup(nl + 1, n - tag - lp - 1);
    if (*plan_id == NULL || *provider == NULL)
        goto oom;
    /* Only the exact text retry_cursor_encode writes (lowercase hex). */
    if ((again = retry_cursor_encode(*plan_id, *provider)) == NULL)
        goto oom;
    same = strcmp(again, cursor) == 0;
    free(again);
    if (!same) {
        free(*plan_id);
        free(*provider);
        *plan_id = NULL;
        *provider = NULL;
        goto bad;
    }
    return 0;

bad:
    return cv_error_set(err, CV_INVALID_ARGUMENT, "cursor is invalid");
oom:
    free(*plan_id);
    free(*provider);
    *plan_id = NULL;
    *provider = NULL;
    return cv_error_set(err, CV_INTERNAL, "out of memory");
}

int
retry_page_resolve(const Cv__RetryPlanRequest *req, const char *plan_id,
                   retry_page *out, cv_error *err)
{
    int rv;

    memset(out, 0, sizeof(*out));
    out->limit = RETRY_PAGE_LIMIT_DEFAULT;
    if (req->has_limit) {
        if ((rv = cv_validate_int_range("limit", req->limit, 1,
                                        RETRY_PAGE_LIMIT_MAX, err)) != 0)
            return rv;
        out->limit = req->limit;
    }
    /* A blank cursor is the first page, like any blank optional text. */
    if (req->cursor == NULL || req->cursor[0] == '\0')
        return 0;
    if ((rv = retry_cursor_decode(req->cursor, &out->after_plan,
                                  &out->after_provider, err)) != 0)
        return rv;
    if (plan_id != NULL && strcmp(plan_id, out->after_plan) != 0) {
        retry_page_free(out);
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "cursor is not from a retry plan of this plan_id");
    }
    return 0;
}

void
retry_page_free(retry_page *page)
{
    free(page->after_plan);
    free(page->after_provider);
    page->after_plan = NULL;
    page->after_provider = NULL;
}

size_t
retry_page_cut(Cv__RetryDecision *const *decisions, size_t n, int64_t limit,
               size_t max_bytes)
{
    size_t keep = limit > 0 && (uint64_t)limit < n ? (size_t)limit : n;
    size_t bytes = 0;

    for (size_t i = 0; i < keep; i++) {
        /* The decision plus its field tag and length prefix. */
        size_t sz = protobuf_c_message_get_packed_size(&decisions[i]->base) + 8;

        if (i > 0 && bytes + sz > max_bytes)
            return i;
        bytes += sz;
    }
    return keep;
}
