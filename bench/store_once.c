/*
 * store_once.c -- bytes stored per acknowledgement, and the response
 * bytes of the three mission endpoints (issue 11, item 5).
 *
 *   store_once [N]     (N acknowledgements, default 10000)
 *
 * Starts the whole stack of the build it was linked with (tests/support:
 * CAVRA_DATABASE_URL / CAVRA_TEST_OWNER_DATABASE_URL as scripts/test.sh
 * sets them), records one plan routed to webhook, then POSTs N
 * acknowledgements (the original CAVRA's reference request, a distinct
 * external_ref each) through the gateway and prints the growth of
 * pg_total_relation_size of every relation an acknowledgement writes
 * (acknowledgements, ack_current, evidence_events: heap, TOAST and
 * indexes), per acknowledgement: first as the files stand ("raw": it
 * includes the dead row versions the evidence sequencer leaves when it
 * chains events, which vary with its timing), then once the sequencer has
 * chained every event and VACUUM FULL compacted the three relations
 * ("live": the bytes the stored data needs). Then one delivery attempt,
 * one retry plan and one schedule-run, printing the bytes of each answer.
 *
 * Built and run by bench/store_once.sh, which also builds the same file
 * against an older commit so both layouts are measured side by side.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cv_test_api.h"

#define P                                                                      \
    "/runtime/go-pilot/rollback-drill-notifications/acknowledgements/"         \
    "audit-delivery"

static const char *const so_tables[] = {"acknowledgements", "ack_current",
                                        "evidence_events"};
#define SO_NTABLES (sizeof(so_tables) / sizeof(so_tables[0]))

static long
so_size(const char *table)
{
    char sql[160];

    snprintf(sql, sizeof(sql), "SELECT pg_total_relation_size('%s')", table);
    return cv_test_db_scalar(sql, NULL);
}

/* Runs one utility statement (VACUUM cannot go through
 * cv_test_db_scalar); exits when it fails. */
static void
so_exec(const char *sql)
{
    PGconn *conn = PQconnectdb(cv_test_database_url());
    PGresult *res = PQexec(conn, sql);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "store_once: %s: %s", sql, PQerrorMessage(conn));
        exit(1);
    }
    PQclear(res);
    PQfinish(conn);
}

/* POSTs body to path; exits unless the answer is 2xx. Returns its bytes. */
static size_t
so_post(cv_test_stack *s, const char *path, const char *body)
{
    cv_http_response r;
    size_t n;

    if (cv_http_request("POST", cv_test_url(s, path), NULL, body, NULL, &r) !=
            0 ||
        r.status < 200 || r.status > 299) {
        fprintf(stderr, "store_once: POST %s: %ld %.300s\n", path, r.status,
                r.body != NULL ? r.body : "");
        exit(1);
    }
    n = strlen(r.body);
    cv_http_response_free(&r);
    return n;
}

int
main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 10000;
    long before[SO_NTABLES], after[SO_NTABLES], live[SO_NTABLES];
    long total = 0, total_live = 0;
    size_t ack_bytes = 0, retry_bytes, run_bytes;
    cv_test_stack s;
    char path[256], body[512], *plan;

    if (n < 1 || n > 1000000) {
        fprintf(stderr, "usage: store_once [N (1..1000000)]\n");
        return 2;
    }
    if (cv_test_stack_start(&s, CV_STACK_ALL) != 0) {
        fprintf(stderr, "store_once: the stack did not start\n");
        return 1;
    }
    plan = cv_test_record_plan_http(
        &s, "{\"generated_by\":\"store-once\",\"escalation_routes\":"
            "[{\"provider\":\"webhook\",\"severity\":\"critical\","
            "\"category\":\"connector-recovery\",\"closure_state\":\"open\","
            "\"age_minutes\":300,\"slo_breached\":true}]}");
    snprintf(path, sizeof(path), P "/recovery-escalations/%s/acknowledgements",
             plan);
    for (size_t t = 0; t < SO_NTABLES; t++)
        before[t] = so_size(so_tables[t]);
    for (long i = 0; i < n; i++) {
        size_t got;

        snprintf(body, sizeof(body),
                 "{\"provider\":\"webhook\",\"acknowledged_by\":"
                 "\"release-manager\",\"acknowledgement_state\":\"accepted\","
                 "\"external_ref\":\"INC-%06ld\",\"notes\":\"reviewed\","
                 "\"escalation_reason\":\"recovery SLO breached\"}",
                 i);
        got = so_post(&s, path, body);
        if (i == 0)
            ack_bytes = got;
    }
    for (size_t t = 0; t < SO_NTABLES; t++)
        after[t] = so_size(so_tables[t]);
    /* Let the sequencer chain the backlog (at most a minute), then
     * compact: what is left is what the data needs. */
    for (int i = 0; i < 600 && cv_test_db_scalar("SELECT count(*) FROM "
                                                 "evidence_events WHERE "
                                                 "chain_seq IS NULL",
                                                 NULL) > 0;
         i++)
        cv_test_sleep_ms(100);
    for (size_t t = 0; t < SO_NTABLES; t++) {
        char sql[128];

        snprintf(sql, sizeof(sql), "VACUUM FULL %s", so_tables[t]);
        so_exec(sql);
        live[t] = so_size(so_tables[t]);
    }

    snprintf(path, sizeof(path), P "/recovery-escalations/%s/delivery-attempts",
             plan);
    so_post(&s, path,
            "{\"provider\":\"webhook\",\"success\":false,\"status_code\":503,"
            "\"attempt_count\":1}");
    /* The reference request, limited to our plan so the answer does not
     * depend on what else the database holds. */
    snprintf(body, sizeof(body),
             "{\"generated_by\":\"console\",\"plan_id\":\"%s\","
             "\"retry_policy\":{\"max_retry_attempts\":3,"
             "\"retry_delay_minutes\":0,\"allow_immediate_retry\":true,"
             "\"backoff_multiplier\":2}}",
             plan);
    retry_bytes = so_post(&s, P "/recovery-escalations/retry-plan", body);
    snprintf(body, sizeof(body),
             "{\"generated_by\":\"console\",\"recovery_slo_minutes\":240,"
             "\"schedule\":{\"interval_minutes\":60,\"cadence\":\"hourly\","
             "\"enabled\":false,\"schedule_id\":\"store-once-%ld\"}}",
             (long)cv_test_now_ms());
    run_bytes = so_post(&s, P "/recovery-executive-report/schedule-run", body);

    printf("acknowledgements stored: %ld\n", n);
    printf("%-18s %12s %12s %12s %12s %12s\n", "relation", "bytes before",
           "bytes after", "raw per ack", "compacted", "live per ack");
    for (size_t t = 0; t < SO_NTABLES; t++) {
        printf("%-18s %12ld %12ld %12.1f %12ld %12.1f\n", so_tables[t],
               before[t], after[t], (double)(after[t] - before[t]) / (double)n,
               live[t], (double)(live[t] - before[t]) / (double)n);
        total += after[t] - before[t];
        total_live += live[t] - before[t];
    }
    printf("%-18s %12s %12s %12.1f %12s %12.1f\n", "total", "", "",
           (double)total / (double)n, "", (double)total_live / (double)n);
    printf("response bytes: acknowledgement %zu, retry-plan %zu, "
           "schedule-run %zu\n",
           ack_bytes, retry_bytes, run_bytes);
    free(plan);
    return cv_test_stack_stop(&s) == 0 ? 0 : 1;
}
