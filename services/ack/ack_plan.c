/*
 * ack_plan.c -- validation and record building for escalation plans and
 * acknowledgements. No I/O: the handlers in ack_rpc.c store what this
 * builds.
 */
#include "ack_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_record.h"
#include "cv_time.h"
#include "cv_transcode.h"
#include "cv_validate.h"

#define ACK_SLO_DEFAULT 240
#define ACK_SLO_MAX     43200
#define ACK_AGE_MAX     5256000 /* ten years in minutes */
#define ACK_FAILURE_MAX 1000000000
#define ACK_SHORT_MAX   64

static const char *const ack_plan_controls[] = {
    "public-safe metadata only: no connector credentials, private "
    "endpoints, ticket payloads or customer incident text",
    "free text is scanned and secrets are redacted before storage",
    "every stored record appends one event to the append-only evidence "
    "stream",
    "each selected provider must acknowledge the escalation",
};

/* Copies a table of string literals into a malloc'd repeated field. */
static int
ack_set_controls(char ***dst, size_t *n, const char *const *src, size_t count)
{
    if ((*dst = calloc(count, sizeof(char *))) == NULL)
        return -1;
    for (size_t i = 0; i < count; i++)
        if (((*dst)[i] = strdup(src[i])) == NULL)
            return -1;
    *n = count;
    return 0;
}

/* Normalises a short free-form label (category, closure state): trimmed,
 * lower-cased, at most ACK_SHORT_MAX characters of [a-z0-9._-]. */
static int
ack_label(const char *field, const char *in, const char *fallback, char **out,
          cv_error *err)
{
    char buf[ACK_SHORT_MAX + 1];
    int rv;

    /* Absent or blank labels take the default; others must be idents. */
    {
        char *t = cv_trim_dup(in);
        int blank = t == NULL || t[0] == '\0';

        free(t);
        if (blank) {
            *out = strdup(fallback);
            return 0;
        }
    }
    if ((rv = cv_normalize_ident(field, in, ACK_SHORT_MAX, buf, sizeof(buf),
                                 err)) != 0)
        return rv;
    *out = strdup(buf);
    return 0;
}

/*
 * An identifier kept as the client wrote it (playbook_id, external_ref):
 * trimmed, then cv_validate_identifier's pattern. It is never redacted:
 * a value that looks like a secret is refused (400 naming the field), so
 * what is stored is exactly what the client sent. Blank is absent.
 */
static int
ack_ident(const char *field, const char *in, size_t max, char **out,
          cv_error *err)
{
    char *t;
    int rv;

    *out = NULL;
    if (in == NULL)
        return 0;
    if ((t = cv_trim_dup(in)) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    if (t[0] == '\0') {
        free(t);
        return 0;
    }
    if ((rv = cv_validate_identifier(field, t, max, false, err)) != 0) {
        free(t);
        return rv;
    }
    *out = t;
    return 0;
}

/* Builds one normalised route from its request form. */
static int
ack_route_build(const Cv__EscalationRoute *in, size_t i,
                Cv__EscalationRoute **out, int *redactions, cv_error *err)
{
    Cv__EscalationRoute *r;
    char field[64];
    char provider[ACK_PROVIDER_MAX + 1];
    int rv;

    *out = NULL;
    snprintf(field, sizeof(field), "escalation_routes[%zu].provider", i);
    if ((rv = cv_normalize_ident(field, in->provider, ACK_PROVIDER_MAX,
                                 provider, sizeof(provider), err)) != 0)
        return rv;
    if ((r = malloc(sizeof(*r))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    cv__escalation_route__init(r);
    *out = r;
    r->provider = strdup(provider);

#define ACK_ROUTE_FIELD(name)                                                  \
    (snprintf(field, sizeof(field), "escalation_routes[%zu]." name, i), field)
    if ((rv = ack_label(ACK_ROUTE_FIELD("category"), in->category,
                        "connector-recovery", &r->category, err)) != 0 ||
        (rv = ack_label(ACK_ROUTE_FIELD("closure_state"), in->closure_state,
                        "open", &r->closure_state, err)) != 0 ||
        (rv = ack_label(ACK_ROUTE_FIELD("slo_status"), in->slo_status,
                        in->has_slo_breached && in->slo_breached ? "breached"
                                                                 : "within_slo",
                        &r->slo_status, err)) != 0 ||
        (rv = cv_record_text(ACK_ROUTE_FIELD("reason"), in->reason,
                             ACK_REASON_MAX, false, &r->reason, redactions,
                             err)) != 0 ||
        (rv = cv_record_text(ACK_ROUTE_FIELD("recommended_action"),
                             in->recommended_action, ACK_REASON_MAX, false,
                             &r->recommended_action, redactions, err)) != 0 ||
        (rv = ack_ident(ACK_ROUTE_FIELD("playbook_id"), in->playbook_id,
                        ACK_EXTERNAL_REF_MAX, &r->playbook_id, err)) != 0)
        return rv;
    if (in->has_severity &&
        (in->severity == CV__SEVERITY__SEVERITY_UNSPECIFIED ||
         cv_enum_json_name(&cv__severity__descriptor, in->severity) == NULL))
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "escalation_routes[%zu].severity must be "
                            "critical, warning, or info",
                            i);
    CV_SET(r, severity,
           in->has_severity ? in->severity : CV__SEVERITY__SEVERITY_WARNING);
    if (in->has_age_minutes &&
        (rv = cv_validate_int_range(ACK_ROUTE_FIELD("age_minutes"),
                                    in->age_minutes, 0, ACK_AGE_MAX, err)) != 0)
        return rv;
    if (in->has_failure_count &&
        (rv = cv_validate_int_range(ACK_ROUTE_FIELD("failure_count"),
                                    in->failure_count, 0, ACK_FAILURE_MAX,
                                    err)) != 0)
        return rv;
#undef ACK_ROUTE_FIELD
    CV_SET(r, age_minutes, in->has_age_minutes ? in->age_minutes : 0);
    CV_SET(r, failure_count, in->has_failure_count ? in->failure_count : 0);
    CV_SET(r, slo_breached, in->has_slo_breached && in->slo_breached);
    return 0;
}

/* Sort order of docs/api.md: critical first, then failure_count desc, then
 * age desc; the original position breaks ties so the sort is stable. */
typedef struct ack_route_slot {
    Cv__EscalationRoute *route;
    size_t position;
} ack_route_slot;

static int
ack_route_cmp(const void *a, const void *b)
{
    const ack_route_slot *x = a, *y = b;
    int xc = x->route->severity == CV__SEVERITY__SEVERITY_CRITICAL;
    int yc = y->route->severity == CV__SEVERITY__SEVERITY_CRITICAL;

    if (xc != yc)
        return yc - xc;
    if (x->route->failure_count != y->route->failure_count)
        return x->route->failure_count > y->route->failure_count ? -1 : 1;
    if (x->route->age_minutes != y->route->age_minutes)
        return x->route->age_minutes > y->route->age_minutes ? -1 : 1;
    return x->position < y->position ? -1 : 1;
}

static int
ack_str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Fills the counts, providers and summary from the normalised routes. */
static int
ack_plan_summarise(Cv__EscalationPlan *p)
{
    int64_t critical = 0, breached = 0, failed = 0, open = 0;
    size_t n = 0;

    for (size_t i = 0; i < p->n_escalation_routes; i++) {
        const Cv__EscalationRoute *r = p->escalation_routes[i];

        critical += r->severity == CV__SEVERITY__SEVERITY_CRITICAL;
        breached += r->slo_breached;
        if (strcmp(r->category, "retry-execution") == 0)
            failed += r->failure_count;
        open += strcmp(r->closure_state, "resolved") != 0 &&
                strcmp(r->closure_state, "mitigated") != 0;
    }
    /* selected_providers: sorted, unique. */
    p->selected_providers = calloc(p->n_escalation_routes, sizeof(char *));
    if (p->selected_providers == NULL)
        return -1;
    for (size_t i = 0; i < p->n_escalation_routes; i++)
        p->selected_providers[i] = p->escalation_routes[i]->provider;
    qsort(p->selected_providers, p->n_escalation_routes, sizeof(char *),
          ack_str_cmp);
    for (size_t i = 0; i < p->n_escalation_routes; i++)
        if (n == 0 ||
            strcmp(p->selected_providers[n - 1], p->selected_providers[i]) != 0)
            p->selected_providers[n++] = p->selected_providers[i];
    for (size_t i = 0; i < n; i++)
        if ((p->selected_providers[i] = strdup(p->selected_providers[i])) ==
            NULL)
            return -1;
    p->n_selected_providers = n;

    CV_SET(p, escalation_count, (int64_t)p->n_escalation_routes);
    CV_SET(p, critical_escalation_count, critical);
    CV_SET(p, slo_breached_count, breached);
    CV_SET(p, failed_execution_count, failed);
    CV_SET(p, open_recovery_count, open);
    CV_SET(p, provider_count, (int64_t)n);
    CV_SET(p, alert_level,
           (critical > 0 || breached > 0)
               ? CV__ALERT_LEVEL__ALERT_LEVEL_CRITICAL
           : p->n_escalation_routes > 0 ? CV__ALERT_LEVEL__ALERT_LEVEL_WARNING
                                        : CV__ALERT_LEVEL__ALERT_LEVEL_HEALTHY);
    if ((p->executive_summary = malloc(sizeof(*p->executive_summary))) == NULL)
        return -1;
    cv__plan_executive_summary__init(p->executive_summary);
    CV_SET(p->executive_summary, status, p->alert_level);
    CV_SET(p->executive_summary, tracked_provider_count, (int64_t)n);
    CV_SET(p->executive_summary, failed_execution_count, failed);
    CV_SET(p->executive_summary, open_recovery_count, open);
    CV_SET(p->executive_summary, slo_breached_count, breached);
    return 0;
}

int
ack_plan_build(const Cv__RecordPlanRequest *req, const char *actor_name,
               const char *request_id, int64_t now_us, Cv__EscalationPlan **out,
               cv_error *err)
{
    Cv__EscalationPlan *p;
    ack_route_slot *slots = NULL;
    int redactions = 0;
    char when[CV_TIME_MAX];
    int rv;

    *out = NULL;
    if (req->has_recovery_slo_minutes)
        if ((rv = cv_validate_int_range("recovery_slo_minutes",
                                        req->recovery_slo_minutes, 1,
                                        ACK_SLO_MAX, err)) != 0)
            return rv;
    if (req->n_escalation_routes == 0)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "escalation_routes is required: give 1 to %d "
                            "routes",
                            ACK_MAX_ROUTES);
    if (req->n_escalation_routes > ACK_MAX_ROUTES)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "escalation_routes must have at most %d routes",
                            ACK_MAX_ROUTES);

    if ((p = malloc(sizeof(*p))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    cv__escalation_plan__init(p);
    if ((rv = cv_record_text("generated_by", req->generated_by,
                             ACK_ACKNOWLEDGER_MAX, false, &p->generated_by,
                             &redactions, err)) != 0)
        goto fail;
    if (actor_name != NULL) {
        free(p->generated_by);
        p->generated_by = strdup(actor_name);
    } else if (p->generated_by == NULL) {
        p->generated_by = strdup("console");
    }

    p->escalation_routes =
        calloc(req->n_escalation_routes, sizeof(Cv__EscalationRoute *));
    slots = calloc(req->n_escalation_routes, sizeof(*slots));
    if (p->escalation_routes == NULL || slots == NULL) {
        rv = cv_error_set(err, CV_INTERNAL, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < req->n_escalation_routes; i++) {
        rv = ack_route_build(req->escalation_routes[i], i,
                             &p->escalation_routes[i], &redactions, err);
        /* Count it even on failure so free_unpacked releases it. */
        if (p->escalation_routes[i] != NULL)
            p->n_escalation_routes = i + 1;
        if (rv != 0)
            goto fail;
        slots[i].route = p->escalation_routes[i];
        slots[i].position = i;
    }
    qsort(slots, p->n_escalation_routes, sizeof(*slots), ack_route_cmp);
    for (size_t i = 0; i < p->n_escalation_routes; i++)
        p->escalation_routes[i] = slots[i].route;

    cv_time_format(now_us, when);
    p->schema_version = strdup(ACK_PLAN_SCHEMA);
    p->product = strdup(CV_PRODUCT);
    p->generated_at = strdup(when);
    CV_SET(p, recovery_slo_minutes,
           req->has_recovery_slo_minutes ? req->recovery_slo_minutes
                                         : ACK_SLO_DEFAULT);
    CV_SET(p, redaction_count, redactions);
    if (ack_plan_summarise(p) != 0 ||
        ack_set_controls(&p->controls, &p->n_controls, ack_plan_controls,
                         sizeof(ack_plan_controls) /
                             sizeof(ack_plan_controls[0])) != 0 ||
        cv_record_derive_id(&p->base, request_id, ACK_PLAN_ID_PREFIX,
                            &p->plan_id) != 0) {
        rv = cv_error_set(err, CV_INTERNAL, "out of memory");
        goto fail;
    }
    free(slots);
    *out = p;
    return 0;

fail:
    free(slots);
    protobuf_c_message_free_unpacked(&p->base, NULL);
    return rv;
}

Cv__PlanMetadata *
ack_plan_metadata(const Cv__EscalationPlan *plan)
{
    Cv__PlanMetadata *m = malloc(sizeof(*m));

    if (m == NULL)
        return NULL;
    cv__plan_metadata__init(m);
    m->metadata_kind = strdup(ACK_PLAN_METADATA_KIND);
    m->session_id = strdup(plan->plan_id);
    m->created_at = strdup(plan->generated_at);
    m->signer = strdup(ACK_SIGNER);
    m->plan_id = strdup(plan->plan_id);
    CV_SET(m, alert_level, plan->alert_level);
    CV_SET(m, escalation_count, plan->escalation_count);
    m->schema_version = strdup(CV_METADATA_SCHEMA);
    m->product = strdup(CV_PRODUCT);
    CV_SET(m, decision_count, plan->escalation_count);
    CV_SET(m, blocked_count, plan->slo_breached_count);
    CV_SET(m, approval_required_count, plan->open_recovery_count);
    m->recovery_escalation_plan =
        (Cv__EscalationPlan *)cv_message_dup(&plan->base);
    return m;
}

#define ACK_STATE_RULE                                                         \
    "acknowledgement_state must be acknowledged, accepted, deferred, "         \
    "escalated, resolved, or dismissed"

int
ack_ack_build(const Cv__AcknowledgeRequest *req, const char *actor_name,
              const char *request_id, int64_t now_us, Cv__Acknowledgement **out,
              cv_error *err)
{
    Cv__Acknowledgement *a;
    char provider[ACK_PROVIDER_MAX + 1];
    char when[CV_TIME_MAX];
    int redactions = 0;
    int rv;

    *out = NULL;
    /* The order of these checks is the order of docs/api.md's errors;
     * a missing or blank provider is "provider is required". */
    if ((rv = cv_normalize_ident("provider", req->provider, ACK_PROVIDER_MAX,
                                 provider, sizeof(provider), err)) != 0)
        return rv;
    if ((a = malloc(sizeof(*a))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    cv__acknowledgement__init(a);
    if (actor_name != NULL) {
        a->acknowledged_by = strdup(actor_name);
    } else if ((rv = cv_record_text("acknowledged_by", req->acknowledged_by,
                                    ACK_ACKNOWLEDGER_MAX, true,
                                    &a->acknowledged_by, &redactions, err)) !=
               0) {
        goto fail;
    }
    if (req->has_acknowledgement_state &&
        (req->acknowledgement_state == CV__ACK_STATE__ACK_STATE_UNSPECIFIED ||
         cv_enum_json_name(&cv__ack_state__descriptor,
                           req->acknowledgement_state) == NULL)) {
        rv = cv_error_set(err, CV_INVALID_ARGUMENT, ACK_STATE_RULE);
        goto fail;
    }
    if ((rv = ack_ident("external_ref", req->external_ref, ACK_EXTERNAL_REF_MAX,
                        &a->external_ref, err)) != 0 ||
        (rv = cv_record_text("notes", req->notes, ACK_NOTES_MAX, false,
                             &a->notes, &redactions, err)) != 0 ||
        (rv = cv_record_text("escalation_reason", req->escalation_reason,
                             ACK_REASON_MAX, false, &a->escalation_reason,
                             &redactions, err)) != 0)
        goto fail;

    cv_time_format(now_us, when);
    a->schema_version = strdup(ACK_ACK_SCHEMA);
    a->product = strdup(CV_PRODUCT);
    a->plan_id = cv_strdup0(req->plan_id);
    a->provider = strdup(provider);
    a->acknowledged_at = strdup(when);
    CV_SET(a, acknowledgement_state,
           req->has_acknowledgement_state
               ? req->acknowledgement_state
               : CV__ACK_STATE__ACK_STATE_ACKNOWLEDGED);
    CV_SET(a, redaction_count, redactions);
    if (cv_record_derive_id(&a->base, request_id, ACK_ACK_ID_PREFIX,
                            &a->acknowledgement_id) != 0) {
        rv = cv_error_set(err, CV_INTERNAL, "out of memory");
        goto fail;
    }
    *out = a;
    return 0;

fail:
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return rv;
}

Cv__AckMetadata *
ack_ack_metadata(const Cv__Acknowledgement *ack)
{
    Cv__AckMetadata *m = malloc(sizeof(*m));

    if (m == NULL)
        return NULL;
    cv__ack_metadata__init(m);
    m->metadata_kind = strdup(ACK_ACK_METADATA_KIND);
    m->session_id = strdup(ack->acknowledgement_id);
    m->created_at = strdup(ack->acknowledged_at);
    m->signer = strdup(ACK_SIGNER);
    m->acknowledgement_id = strdup(ack->acknowledgement_id);
    m->plan_id = strdup(ack->plan_id);
    m->provider = strdup(ack->provider);
    CV_SET(m, acknowledgement_state, ack->acknowledgement_state);
    m->schema_version = strdup(CV_METADATA_SCHEMA);
    m->product = strdup(CV_PRODUCT);
    /* One reviewed decision: nothing blocked, no approval pending. */
    CV_SET(m, decision_count, 1);
    CV_SET(m, blocked_count, 0);
    CV_SET(m, approval_required_count, 0);
    /* The original's keys only: ours are in the record beside it. */
    m->recovery_escalation_acknowledgement =
        (Cv__EmbeddedAcknowledgement *)cv_message_view(
            &ack->base, &cv__embedded_acknowledgement__descriptor);
    return m;
}
