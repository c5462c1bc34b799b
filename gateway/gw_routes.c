/*
 * gw_routes.c -- the route table and the path matcher.
 */
#include "gw_routes.h"

#include <stdio.h>
#include <string.h>

#include "ack.pb-c.h"
#include "evidence.pb-c.h"
#include "gw_auth.h"
#include "report.pb-c.h"
#include "retry.pb-c.h"

#define GW_P                                                                   \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery"

const gw_route gw_routes[] = {
    {"POST", GW_P "/recovery-escalation-plan", GW_SVC_ACK, "ack.RecordPlan",
     &cv__record_plan_request__descriptor, &cv__record_plan_reply__descriptor,
     201, GW_ROLE_PLATFORM_OWNER | GW_ROLE_SERVICE,
     "Record a recovery escalation plan", 0},
    {"POST", GW_P "/recovery-escalations/{plan_id}/acknowledgements",
     GW_SVC_ACK, "ack.Acknowledge", &cv__acknowledge_request__descriptor,
     &cv__acknowledge_reply__descriptor, 201, GW_ROLE_RELEASE_MANAGER,
     "Acknowledge a recovery escalation for one provider", 0},
    {"GET", GW_P "/recovery-escalations/{plan_id}", GW_SVC_ACK, "ack.GetPlan",
     &cv__get_plan_request__descriptor, &cv__get_plan_reply__descriptor, 200,
     GW_ROLE_ANY, "Read one recovery escalation plan", 0},
    {"POST", GW_P "/recovery-escalations/{plan_id}/delivery-attempts",
     GW_SVC_RETRY, "retry.RecordDelivery",
     &cv__record_delivery_request__descriptor,
     &cv__record_delivery_reply__descriptor, 201,
     GW_ROLE_PLATFORM_OWNER | GW_ROLE_SERVICE,
     "Record a connector's delivery attempt of an escalation", 0},
    {"POST", GW_P "/recovery-escalations/retry-plan", GW_SVC_RETRY,
     "retry.PlanRetries", &cv__retry_plan_request__descriptor,
     &cv__retry_plan_reply__descriptor, 201, GW_ROLE_PLATFORM_OWNER,
     "Plan retries of failed escalation deliveries", 0},
    {"POST", GW_P "/recovery-executive-report/schedule-run", GW_SVC_REPORT,
     "report.ScheduleRun", &cv__schedule_run_request__descriptor,
     &cv__schedule_run_reply__descriptor, 201, GW_ROLE_EXECUTIVE,
     "Generate (once per window) the scheduled executive report run", 0},
    {"GET", GW_P "/recovery-escalations/{plan_id}/trace", GW_SVC_REPORT,
     "report.Trace", &cv__trace_request__descriptor, &cv__trace__descriptor,
     200, GW_ROLE_ANY,
     "Everything the evidence stream holds about one plan, in order", 0},
    {"GET", "/runtime/go-pilot/rollback-drill-notifications/dashboard",
     GW_SVC_REPORT, "report.Dashboard", &cv__dashboard_request__descriptor,
     &cv__dashboard__descriptor, 200, GW_ROLE_ANY,
     "Exact counts over the whole store", 0},
    {"GET", "/runtime/go-pilot/rollback-drill-notifications", GW_SVC_REPORT,
     "report.ListEvidence", &cv__list_evidence_request__descriptor,
     &cv__evidence_page__descriptor, 200, GW_ROLE_ANY,
     "The evidence stream, newest first, filtered and paginated", 0},
    {"GET", "/runtime/evidence/verify", GW_SVC_REPORT, "report.VerifyEvidence",
     &cv__verify_evidence_request__descriptor,
     &cv__evidence_verification__descriptor, 200, GW_ROLE_ANY,
     "Recompute the evidence hash chain and say where it first breaks",
     /* Walks every event: allow minutes, not seconds. */
     300000},
};
const size_t gw_route_count = sizeof(gw_routes) / sizeof(gw_routes[0]);

static int
gw_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
gw_percent_decode(const char *s, size_t len, char *out, size_t outlen,
                  bool allow_slash)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];

        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len)
                return -1;
            hi = gw_hex(s[i + 1]);
            lo = gw_hex(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
            if (c == 0 || (c == '/' && !allow_slash))
                return -1;
        }
        if (o + 1 >= outlen)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

/* Matches path against one pattern, segment by segment. */
static bool
gw_pattern_match(const char *pattern, const char *path, gw_path_param *params,
                 size_t *n_params)
{
    const char *p = pattern, *q = path;

    *n_params = 0;
    while (*p != '\0' && *q != '\0') {
        const char *pe = strchr(p + 1, '/'), *qe = strchr(q + 1, '/');
        size_t pl, ql;

        if (*p != '/' || *q != '/')
            return false;
        p++;
        q++;
        pl = pe != NULL ? (size_t)(pe - p) : strlen(p);
        ql = qe != NULL ? (size_t)(qe - q) : strlen(q);
        if (pl > 2 && p[0] == '{' && p[pl - 1] == '}') {
            gw_path_param *pp;

            if (ql == 0 || *n_params >= GW_MAX_PATH_PARAMS)
                return false;
            pp = &params[(*n_params)++];
            snprintf(pp->name, sizeof(pp->name), "%.*s", (int)(pl - 2), p + 1);
            if (gw_percent_decode(q, ql, pp->value, sizeof(pp->value), false) !=
                0)
                return false;
        } else if (pl != ql || strncmp(p, q, pl) != 0) {
            return false;
        }
        p += pl;
        q += ql;
    }
    return *p == '\0' && *q == '\0';
}

const gw_route *
gw_route_match(const char *method, const char *path, gw_path_param *params,
               size_t *n_params, bool *path_known, char *allow,
               size_t allow_len)
{
    const gw_route *found = NULL;
    size_t used = 0;

    *path_known = false;
    if (allow_len > 0)
        allow[0] = '\0';
    for (size_t i = 0; i < gw_route_count; i++) {
        gw_path_param tmp[GW_MAX_PATH_PARAMS];
        size_t n;

        if (!gw_pattern_match(gw_routes[i].pattern, path, tmp, &n))
            continue;
        *path_known = true;
        if (used < allow_len) {
            int w = snprintf(allow + used, allow_len - used, "%s%s",
                             used > 0 ? ", " : "", gw_routes[i].http_method);
            if (w > 0)
                used += (size_t)w;
        }
        if (found == NULL && strcmp(gw_routes[i].http_method, method) == 0) {
            found = &gw_routes[i];
            memcpy(params, tmp, sizeof(tmp));
            *n_params = n;
        }
    }
    return found;
}
