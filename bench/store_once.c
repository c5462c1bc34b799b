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
 * one retry plan and one schedule-run. The first acknowledgement, the
 * retry plan and the schedule-run are each sent twice with one
 * Idempotency-Key: first with Accept-Encoding: gzip, deflate (what Python
 * requests, the original CAVRA clients, sends), then, as a replay of the
 * same answer, with no Accept-Encoding; both sizes on the wire are
 * printed (equal when the gateway does not compress). STORE_ONCE_DUMP=DIR
 * writes the plain answers there (<name>.json).
 *
 * Built and run by bench/store_once.sh, which also builds the same file
 * against an older commit so both layouts are measured side by side.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* One answer's bytes on the wire. */
typedef struct so_wire {
    char *buf;
    size_t len;
    bool gzip; /* Content-Encoding: gzip */
} so_wire;

static size_t
so_wire_body(char *data, size_t size, size_t nmemb, void *arg)
{
    so_wire *w = arg;
    size_t n = size * nmemb;
    char *grown = realloc(w->buf, w->len + n + 1);

    if (grown == NULL)
        return 0;
    memcpy(grown + w->len, data, n);
    w->buf = grown;
    w->len += n;
    w->buf[w->len] = '\0';
    return n;
}

static size_t
so_wire_header(char *data, size_t size, size_t nmemb, void *arg)
{
    so_wire *w = arg;
    size_t n = size * nmemb;

    if (n > 22 && strncasecmp(data, "Content-Encoding:", 17) == 0 &&
        strstr(data + 17, "gzip") != NULL)
        w->gzip = true;
    return n;
}

/* POSTs body to path with Accept-Encoding `accept` (NULL: none) and an
 * Idempotency-Key, keeping the bytes as sent (curl decodes nothing);
 * exits unless the answer is 2xx. */
static void
so_post_wire(cv_test_stack *s, const char *path, const char *body,
             const char *accept, const char *key, so_wire *w)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    char line[256];
    long status = 0;

    memset(w, 0, sizeof(*w));
    if (curl == NULL)
        exit(1);
    curl_easy_setopt(curl, CURLOPT_URL, cv_test_url(s, path));
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, so_wire_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, so_wire_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, w);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (accept != NULL) {
        snprintf(line, sizeof(line), "Accept-Encoding: %s", accept);
        hdrs = curl_slist_append(hdrs, line);
    }
    snprintf(line, sizeof(line), "Idempotency-Key: %s", key);
    hdrs = curl_slist_append(hdrs, line);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    if (curl_easy_perform(curl) != CURLE_OK ||
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
        status < 200 || status > 299) {
        fprintf(stderr, "store_once: POST %s: %ld %.300s\n", path, status,
                w->buf != NULL ? w->buf : "");
        exit(1);
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
}

/*
 * One mission answer measured both ways: POSTed with Accept-Encoding as
 * Python requests sends it ("gzip, deflate") and replayed (same
 * Idempotency-Key: the same answer, byte for byte) with none. *plain gets
 * the identity bytes, *gzip the bytes of the first (equal to *plain when
 * the gateway did not compress). With STORE_ONCE_DUMP set to a folder,
 * the plain answer is written there as <name>.json.
 */
static void
so_measure(cv_test_stack *s, const char *name, const char *path,
           const char *body, size_t *plain, size_t *gzip)
{
    const char *dump = getenv("STORE_ONCE_DUMP");
    char key[96];
    so_wire z, p;

    snprintf(key, sizeof(key), "store-once-%s-%ld", name, cv_test_now_ms());
    so_post_wire(s, path, body, "gzip, deflate", key, &z);
    so_post_wire(s, path, body, NULL, key, &p);
    *plain = p.len;
    *gzip = z.len;
    if (dump != NULL && dump[0] != '\0') {
        char file[512];
        FILE *f;

        snprintf(file, sizeof(file), "%s/%s.json", dump, name);
        if ((f = fopen(file, "w")) != NULL) {
            fwrite(p.buf, 1, p.len, f);
            fclose(f);
        }
    }
    free(z.buf);
    free(p.buf);
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
    size_t ack_bytes, ack_gzip, retry_bytes, retry_gzip, run_bytes, run_gzip;
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
        snprintf(body, sizeof(body),
                 "{\"provider\":\"webhook\",\"acknowledged_by\":"
                 "\"release-manager\",\"acknowledgement_state\":\"accepted\","
                 "\"external_ref\":\"INC-%06ld\",\"notes\":\"reviewed\","
                 "\"escalation_reason\":\"recovery SLO breached\"}",
                 i);
        /* The first one measured (its replay stores nothing). */
        if (i == 0)
            so_measure(&s, "acknowledgement", path, body, &ack_bytes,
                       &ack_gzip);
        else
            so_post(&s, path, body);
    }
    for (size_t t = 0; t < SO_NTABLES; t++)
        after[t] = so_size(so_tables[t]);
    /* Let the sequencer chain the backlog (at most a minute), then
     * compact: what is left is what the data needs. */
    for (int i = 0; i < 600 && cv_test_db_scalar("SELECT count(*) FROM "
                                                 "evidence_unsequenced",
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
    so_measure(&s, "retry-plan", P "/recovery-escalations/retry-plan", body,
               &retry_bytes, &retry_gzip);
    snprintf(body, sizeof(body),
             "{\"generated_by\":\"console\",\"recovery_slo_minutes\":240,"
             "\"schedule\":{\"interval_minutes\":60,\"cadence\":\"hourly\","
             "\"enabled\":false,\"schedule_id\":\"store-once-%ld\"}}",
             (long)cv_test_now_ms());
    so_measure(&s, "schedule-run", P "/recovery-executive-report/schedule-run",
               body, &run_bytes, &run_gzip);

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
    printf("response bytes with Accept-Encoding: gzip, deflate: "
           "acknowledgement %zu, retry-plan %zu, schedule-run %zu\n",
           ack_gzip, retry_gzip, run_gzip);
    free(plan);
    return cv_test_stack_stop(&s) == 0 ? 0 : 1;
}
