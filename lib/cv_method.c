/*
 * cv_method.c -- the method registry (see cv_method.h): one row per RPC.
 */
#include "cv_method.h"

#include <stdio.h>
#include <string.h>

#include "ack.pb-c.h"
#include "evidence.pb-c.h"
#include "report.pb-c.h"
#include "retry.pb-c.h"

#define CV_P                                                                   \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery"

const cv_method_info cv_methods[] = {
    {"ack.RecordPlan", CV_SVC_ACK, &cv__record_plan_request__descriptor,
     &cv__record_plan_reply__descriptor,
     CV_ROLE_PLATFORM_OWNER | CV_ROLE_SERVICE, CV_TX_WRITE, true, true,
     "Record a recovery escalation plan", "POST",
     CV_P "/recovery-escalation-plan", 0},
    {"ack.Acknowledge", CV_SVC_ACK, &cv__acknowledge_request__descriptor,
     &cv__acknowledge_reply__descriptor, CV_ROLE_RELEASE_MANAGER, CV_TX_WRITE,
     true, true, "Acknowledge a recovery escalation for one provider", "POST",
     CV_P "/recovery-escalations/{plan_id}/acknowledgements", 0},
    {"ack.GetPlan", CV_SVC_ACK, &cv__get_plan_request__descriptor,
     &cv__get_plan_reply__descriptor, CV_ROLE_ANY, CV_TX_READ, false, false,
     "Read one recovery escalation plan", "GET",
     CV_P "/recovery-escalations/{plan_id}", 0},
    {"retry.RecordDelivery", CV_SVC_RETRY,
     &cv__record_delivery_request__descriptor,
     &cv__record_delivery_reply__descriptor,
     CV_ROLE_PLATFORM_OWNER | CV_ROLE_SERVICE, CV_TX_WRITE, true, true,
     "Record a connector's delivery attempt of an escalation", "POST",
     CV_P "/recovery-escalations/{plan_id}/delivery-attempts", 0},
    /* One snapshot: the decisions and the counts agree with each other. */
    {"retry.PlanRetries", CV_SVC_RETRY, &cv__retry_plan_request__descriptor,
     &cv__retry_plan_reply__descriptor, CV_ROLE_PLATFORM_OWNER,
     CV_TX_WRITE_SNAPSHOT, true, true,
     "Plan retries of failed escalation deliveries (paged: limit, cursor; "
     "the reply's next_cursor asks for the next page)",
     "POST", CV_P "/recovery-escalations/retry-plan", 0},
    /* The report counts and the run insert see one snapshot; a window
     * taken by a concurrent caller surfaces as a serialization failure,
     * which the RPC layer retries (and then finds the stored run). */
    {"report.ScheduleRun", CV_SVC_REPORT, &cv__schedule_run_request__descriptor,
     &cv__schedule_run_reply__descriptor, CV_ROLE_EXECUTIVE,
     CV_TX_WRITE_SNAPSHOT, true, true,
     "Generate (once per window) the scheduled executive report run", "POST",
     CV_P "/recovery-executive-report/schedule-run", 0},
    /* Read-only either way: with query parameters the report is
     * computed and answered, never stored (a GET stays safe). */
    {"report.LatestReport", CV_SVC_REPORT,
     &cv__latest_report_request__descriptor,
     &cv__latest_report_reply__descriptor, CV_ROLE_ANY, CV_TX_READ_SNAPSHOT,
     false, false,
     "The latest executive report (or one computed now, not stored, with "
     "recovery_slo_minutes or generated_by)",
     "GET", CV_P "/recovery-executive-report", 0},
    {"report.ListRuns", CV_SVC_REPORT, &cv__list_runs_request__descriptor,
     &cv__run_page__descriptor, CV_ROLE_ANY, CV_TX_READ_SNAPSHOT, false, false,
     "Stored executive report runs, newest first, in pages", "GET",
     CV_P "/recovery-executive-report/runs", 0},
    {"report.Trace", CV_SVC_REPORT, &cv__trace_request__descriptor,
     &cv__trace__descriptor, CV_ROLE_ANY, CV_TX_READ_SNAPSHOT, false, false,
     "Everything the evidence stream holds about one plan, in order", "GET",
     CV_P "/recovery-escalations/{plan_id}/trace", 0},
    {"report.Dashboard", CV_SVC_REPORT, &cv__dashboard_request__descriptor,
     &cv__dashboard__descriptor, CV_ROLE_ANY, CV_TX_READ_SNAPSHOT, false, false,
     "Exact counts over the whole store", "GET",
     "/runtime/go-pilot/rollback-drill-notifications/dashboard", 0},
    {"report.ListEvidence", CV_SVC_REPORT,
     &cv__list_evidence_request__descriptor, &cv__evidence_page__descriptor,
     CV_ROLE_ANY, CV_TX_READ_SNAPSHOT, false, false,
     "The evidence stream, newest first, filtered and paginated", "GET",
     "/runtime/go-pilot/rollback-drill-notifications", 0},
    /* Walks every event: allow minutes, not seconds. Auditors only (and
     * admin): one walk costs the whole store, and the report service runs
     * one at a time (report_rpc.c). */
    {"report.VerifyEvidence", CV_SVC_REPORT,
     &cv__verify_evidence_request__descriptor,
     &cv__evidence_verification__descriptor, CV_ROLE_AUDITOR,
     CV_TX_READ_SNAPSHOT, false, false,
     "Recompute the evidence hash chain and say where it first breaks", "GET",
     "/runtime/evidence/verify", 300000},
    /* The evidence log's reads (docs/evidence.md): every read role, auditors
     * first. Raw replies: the note, the key and the tiles are served byte for
     * byte as signed or specified (C2SP), the proofs as their JSON
     * bundles. */
    {"report.EvidenceCheckpoint", CV_SVC_REPORT,
     &cv__evidence_checkpoint_request__descriptor, &cv__raw_body__descriptor,
     CV_ROLE_ANY, CV_TX_READ, false, false,
     "The latest signed checkpoint of the evidence log (C2SP "
     "tlog-checkpoint, text as signed)",
     "GET", "/runtime/evidence/checkpoint", 0},
    {"report.EvidencePublicKey", CV_SVC_REPORT,
     &cv__evidence_public_key_request__descriptor, &cv__raw_body__descriptor,
     CV_ROLE_ANY, CV_TX_NONE, false, false,
     "The verifier key of the evidence checkpoints (signed-note vkey text)",
     "GET", "/runtime/evidence/public-key", 0},
    {"report.InclusionProof", CV_SVC_REPORT,
     &cv__inclusion_proof_request__descriptor, &cv__raw_body__descriptor,
     CV_ROLE_ANY, CV_TX_READ_SNAPSHOT, false, false,
     "Inclusion proof of one record's evidence event against a signed "
     "checkpoint (JSON bundle for cavra-verify --inclusion)",
     "GET", "/runtime/evidence/proof/inclusion", 0},
    {"report.ConsistencyProof", CV_SVC_REPORT,
     &cv__consistency_proof_request__descriptor, &cv__raw_body__descriptor,
     CV_ROLE_ANY, CV_TX_READ_SNAPSHOT, false, false,
     "Consistency proof between two tree sizes of the evidence log (JSON)",
     "GET", "/runtime/evidence/proof/consistency", 0},
    {"report.EvidenceTile", CV_SVC_REPORT,
     &cv__evidence_tile_request__descriptor, &cv__raw_body__descriptor,
     CV_ROLE_ANY, CV_TX_READ, false, false,
     "A C2SP tlog-tiles tile (binary hashes) or entry bundle of the "
     "evidence log",
     "GET", "/runtime/evidence/tile/{path*}", 0},
};
const size_t cv_method_count = sizeof(cv_methods) / sizeof(cv_methods[0]);

const cv_method_info *
cv_method_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < cv_method_count; i++)
        if (strcmp(cv_methods[i].name, name) == 0)
            return &cv_methods[i];
    return NULL;
}

bool
cv_method_raw_reply(const cv_method_info *m)
{
    return m != NULL && m->reply == &cv__raw_body__descriptor;
}

const char *
cv_service_name(enum cv_service_id svc)
{
    static const char *const names[CV_SVC_COUNT] = {"ack", "retry", "report"};

    return (unsigned)svc < CV_SVC_COUNT ? names[svc] : "unknown";
}

/* In bit order, which is also the order roles are listed in. */
static const struct {
    const char *name;
    unsigned int bit;
} cv_role_names[] = {
    {"release_manager", CV_ROLE_RELEASE_MANAGER},
    {"platform_owner", CV_ROLE_PLATFORM_OWNER},
    {"executive", CV_ROLE_EXECUTIVE},
    {"auditor", CV_ROLE_AUDITOR},
    {"service", CV_ROLE_SERVICE},
    {"admin", CV_ROLE_ADMIN},
};
#define CV_ROLE_NAME_COUNT (sizeof(cv_role_names) / sizeof(cv_role_names[0]))

const char *
cv_role_name(unsigned int bit)
{
    for (size_t i = 0; i < CV_ROLE_NAME_COUNT; i++)
        if (cv_role_names[i].bit == bit)
            return cv_role_names[i].name;
    return NULL;
}

unsigned int
cv_role_bit(const char *name, size_t len)
{
    for (size_t i = 0; i < CV_ROLE_NAME_COUNT; i++)
        if (strlen(cv_role_names[i].name) == len &&
            strncmp(cv_role_names[i].name, name, len) == 0)
            return cv_role_names[i].bit;
    return 0;
}

void
cv_roles_text(unsigned int roles, const char *sep, char *out, size_t outlen)
{
    size_t used = 0;

    if (outlen == 0)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < CV_ROLE_NAME_COUNT && used < outlen; i++) {
        int n;

        if ((roles & cv_role_names[i].bit) == 0)
            continue;
        n = snprintf(out + used, outlen - used, "%s%s", used > 0 ? sep : "",
                     cv_role_names[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

const char *
cv_tx_mode_name(enum cv_tx_mode tx)
{
    switch (tx) {
    case CV_TX_NONE:
        return "none";
    case CV_TX_WRITE:
        return "write";
    case CV_TX_WRITE_SNAPSHOT:
        return "write-snapshot";
    case CV_TX_READ:
        return "read";
    case CV_TX_READ_SNAPSHOT:
        return "read-snapshot";
    }
    return "unknown";
}
