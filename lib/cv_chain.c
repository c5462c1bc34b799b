/*
 * cv_chain.c -- sequencer and verifier of the evidence hash chain (see
 * cv_chain.h for the design notes and the hash definition).
 */
#include "cv_chain.h"

#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "cv_id.h"

/* The chain lock's key: any constant no other advisory lock uses. */
#define CV_CHAIN_LOCK_KEY "7310007"
#define CV_CHAIN_PAGE     "1000"

/* Timestamps are read back in exactly the form cv_time_format wrote. */
#define CV_CHAIN_TIME                                                          \
    "to_char(created_at AT TIME ZONE 'UTC', "                                  \
    "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

const cv_db_statement cv_chain_statements[] = {
    {"cv_chain_try_lock",
     "SELECT pg_try_advisory_xact_lock(" CV_CHAIN_LOCK_KEY ")"},
    {"cv_chain_head",
     "SELECT chain_seq, encode(hash, 'hex') FROM evidence_events"
     " WHERE chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1"},
    {"cv_chain_unchained",
     "SELECT id, kind, record_id, plan_id, provider, actor, "
     "request_id, " CV_CHAIN_TIME ", record::text, principal"
     " FROM evidence_events"
     " WHERE chain_seq IS NULL ORDER BY id LIMIT $1::int"},
    {"cv_chain_set", "UPDATE evidence_events SET chain_seq = $2::bigint,"
                     " prev_hash = decode($3, 'hex'), hash = decode($4, 'hex')"
                     " WHERE id = $1::bigint AND chain_seq IS NULL"},
    {"cv_chain_page",
     "SELECT chain_seq, kind, record_id, plan_id, provider, actor,"
     " request_id, " CV_CHAIN_TIME ", record::text, encode(prev_hash, 'hex'),"
     " encode(hash, 'hex'), principal FROM evidence_events"
     " WHERE chain_seq > $1::bigint ORDER BY chain_seq LIMIT " CV_CHAIN_PAGE},
    {"cv_chain_pending",
     "SELECT count(*) FROM evidence_events WHERE chain_seq IS NULL"},
};
const size_t cv_chain_statement_count =
    sizeof(cv_chain_statements) / sizeof(cv_chain_statements[0]);

static json_t *
cv_chain_str(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

/* The event as a JSON object; NULL when record is not JSON. */
static json_t *
cv_chain_event_json(const cv_chain_event *ev)
{
    json_t *record = json_loads(ev->record != NULL ? ev->record : "null",
                                JSON_DECODE_ANY, NULL);
    json_t *obj;

    if (record == NULL)
        return NULL;
    obj = json_object();
    json_object_set_new(obj, "seq", json_integer(ev->seq));
    json_object_set_new(obj, "kind", cv_chain_str(ev->kind));
    json_object_set_new(obj, "record_id", cv_chain_str(ev->record_id));
    json_object_set_new(obj, "plan_id", cv_chain_str(ev->plan_id));
    json_object_set_new(obj, "provider", cv_chain_str(ev->provider));
    json_object_set_new(obj, "actor", cv_chain_str(ev->actor));
    json_object_set_new(obj, "request_id", cv_chain_str(ev->request_id));
    json_object_set_new(obj, "created_at", cv_chain_str(ev->created_at));
    json_object_set_new(obj, "record", record);
    if (ev->principal != NULL)
        json_object_set_new(obj, "principal", json_string(ev->principal));
    return obj;
}

#define CV_CHAIN_CANONICAL_FLAGS (JSON_SORT_KEYS | JSON_COMPACT)

char *
cv_chain_canonical(const cv_chain_event *ev)
{
    json_t *obj = cv_chain_event_json(ev);
    char *text;

    if (obj == NULL)
        return NULL;
    text = json_dumps(obj, CV_CHAIN_CANONICAL_FLAGS);
    json_decref(obj);
    return text;
}

static void
cv_chain_sha256(const void *a, size_t alen, const void *b, size_t blen,
                const void *c, size_t clen, uint8_t out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 32;

    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, a, alen) != 1 ||
        (blen > 0 && EVP_DigestUpdate(ctx, b, blen) != 1) ||
        (clen > 0 && EVP_DigestUpdate(ctx, c, clen) != 1) ||
        EVP_DigestFinal_ex(ctx, out, &n) != 1)
        memset(out, 0, 32); /* never matches a real chain */
    EVP_MD_CTX_free(ctx);
}

void
cv_chain_hash(const uint8_t prev[32], const char *canonical, uint8_t out[32])
{
    static const uint8_t leaf_tag = 0x00, node_tag = 0x01;
    uint8_t leaf[32];

    cv_chain_sha256(&leaf_tag, 1, canonical, strlen(canonical), NULL, 0, leaf);
    cv_chain_sha256(&node_tag, 1, prev, 32, leaf, 32, out);
}

void
cv_chain_hex(const uint8_t hash[32], char out[65])
{
    cv_hex_encode(hash, 32, out);
}

static int
cv_chain_unhex(const char *hex, uint8_t out[32])
{
    return cv_hex_decode(hex, 32, out);
}

static const char *
cv_chain_value(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* The event's fields from a row of cv_chain_unchained or cv_chain_page:
 * columns 1..8 in both (column 0 is the id or the chain position). */
static cv_chain_event
cv_chain_row_event(PGresult *res, int row, int64_t seq)
{
    cv_chain_event ev = {
        .seq = seq,
        .kind = cv_chain_value(res, row, 1),
        .record_id = cv_chain_value(res, row, 2),
        .plan_id = cv_chain_value(res, row, 3),
        .provider = cv_chain_value(res, row, 4),
        .actor = cv_chain_value(res, row, 5),
        .request_id = cv_chain_value(res, row, 6),
        .created_at = cv_chain_value(res, row, 7),
        .record = cv_chain_value(res, row, 8),
    };
    int col = PQfnumber(res, "principal");

    /* The principal is the last column of both queries. */
    ev.principal = col >= 0 ? cv_chain_value(res, row, col) : NULL;
    return ev;
}

int
cv_chain_sequence(cv_db *db, int batch, int *chained, cv_error *err)
{
    PGresult *res = NULL, *head;
    uint8_t prev[32];
    int64_t seq = 0;
    char limit[16];
    int rv;

    *chained = 0;
    memset(prev, 0, sizeof(prev));
    if ((rv = cv_db_tx_begin(db, CV_TX_WRITE, err)) != 0)
        return rv;
    if ((res = cv_db_exec(db, "cv_chain_try_lock", 0, NULL, err)) == NULL)
        goto fail;
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        /* Another sequencer is at work: nothing to do this round. */
        PQclear(res);
        cv_db_tx_rollback(db);
        return 0;
    }
    PQclear(res);
    if ((head = cv_db_exec(db, "cv_chain_head", 0, NULL, err)) == NULL)
        goto fail;
    if (PQntuples(head) == 1) {
        seq = strtoll(PQgetvalue(head, 0, 0), NULL, 10);
        cv_chain_unhex(PQgetvalue(head, 0, 1), prev);
    }
    PQclear(head);
    snprintf(limit, sizeof(limit), "%d", batch > 0 ? batch : 500);
    {
        const char *p[1] = {limit};
        if ((res = cv_db_exec(db, "cv_chain_unchained", 1, p, err)) == NULL)
            goto fail;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        cv_chain_event ev = cv_chain_row_event(res, i, seq + 1);
        char *canonical = cv_chain_canonical(&ev);
        uint8_t hash[32];
        char seqtext[24], prevhex[65], hashhex[65];
        const char *p[4];

        if (canonical == NULL) {
            cv_error_set(err, CV_DATA_LOSS, "evidence event %s is unreadable",
                         PQgetvalue(res, i, 0));
            goto fail;
        }
        cv_chain_hash(prev, canonical, hash);
        free(canonical);
        snprintf(seqtext, sizeof(seqtext), "%" PRId64, ev.seq);
        cv_chain_hex(prev, prevhex);
        cv_chain_hex(hash, hashhex);
        p[0] = PQgetvalue(res, i, 0);
        p[1] = seqtext;
        p[2] = prevhex;
        p[3] = hashhex;
        {
            PGresult *set = cv_db_exec(db, "cv_chain_set", 4, p, err);
            /* Exactly one row: anything else means another writer chained
             * it, and this round must not count it. */
            bool one = set != NULL && strcmp(PQcmdTuples(set), "1") == 0;

            PQclear(set);
            if (!one) {
                if (set != NULL)
                    cv_error_set(err, CV_ABORTED,
                                 "evidence event %s was chained concurrently",
                                 p[0]);
                goto fail;
            }
        }
        memcpy(prev, hash, 32);
        seq++;
        (*chained)++;
    }
    PQclear(res);
    res = NULL;
    if ((rv = cv_db_tx_commit(db, err)) != 0) {
        *chained = 0;
        return rv;
    }
    return 0;

fail:
    PQclear(res);
    cv_db_tx_rollback(db);
    *chained = 0;
    return err != NULL && err->code != CV_OK ? err->code : CV_INTERNAL;
}

/* Checks one event against the running state; fills report on failure. */
static bool
cv_chain_check(cv_chain_report *report, uint8_t prev[32],
               const cv_chain_event *ev, const char *stored_prev,
               const char *stored_hash)
{
    char *canonical;
    uint8_t hash[32];
    char prevhex[65], hashhex[65];

    report->first_invalid_seq = ev->seq;
    report->valid = false;
    if (ev->seq != report->events + 1) {
        snprintf(report->reason, sizeof(report->reason),
                 "event %" PRId64 " is missing (found %" PRId64 " next)",
                 report->events + 1, ev->seq);
        report->first_invalid_seq = report->events + 1;
        return false;
    }
    cv_chain_hex(prev, prevhex);
    if (stored_prev != NULL && strcmp(stored_prev, prevhex) != 0) {
        snprintf(report->reason, sizeof(report->reason),
                 "event %" PRId64 " does not link to the event before it",
                 ev->seq);
        return false;
    }
    if ((canonical = cv_chain_canonical(ev)) == NULL) {
        snprintf(report->reason, sizeof(report->reason),
                 "event %" PRId64 " is unreadable", ev->seq);
        return false;
    }
    cv_chain_hash(prev, canonical, hash);
    free(canonical);
    cv_chain_hex(hash, hashhex);
    if (stored_hash == NULL || strcmp(stored_hash, hashhex) != 0) {
        snprintf(report->reason, sizeof(report->reason),
                 "event %" PRId64 " (%s %s) was changed after it was chained",
                 ev->seq, ev->kind != NULL ? ev->kind : "?",
                 ev->record_id != NULL ? ev->record_id : "?");
        return false;
    }
    memcpy(prev, hash, 32);
    memcpy(report->head, hashhex, sizeof(report->head));
    report->events++;
    report->valid = true;
    report->first_invalid_seq = 0;
    report->reason[0] = '\0';
    return true;
}

static void
cv_chain_report_init(cv_chain_report *report)
{
    memset(report, 0, sizeof(*report));
    report->valid = true;
}

/*
 * Calls visit for every chained event in chain order, a page at a time,
 * inside the caller's transaction (one snapshot). visit returns 0 to go
 * on, 1 to stop, or an error code (with err set). Returns 0 or that code.
 */
typedef int (*cv_chain_visit_fn)(void *arg, const cv_chain_event *ev,
                                 const char *prev_hex, const char *hash_hex,
                                 cv_error *err);

static int
cv_chain_walk(cv_db *db, cv_chain_visit_fn visit, void *arg, cv_error *err)
{
    char after[24] = "0";
    PGresult *res;
    int rows, rv = 0;

    do {
        const char *p[1] = {after};

        if ((res = cv_db_exec(db, "cv_chain_page", 1, p, err)) == NULL)
            return err->code;
        rows = PQntuples(res);
        for (int i = 0; i < rows && rv == 0; i++) {
            cv_chain_event ev = cv_chain_row_event(
                res, i, strtoll(PQgetvalue(res, i, 0), NULL, 10));

            rv = visit(arg, &ev, cv_chain_value(res, i, 9),
                       cv_chain_value(res, i, 10), err);
            snprintf(after, sizeof(after), "%" PRId64, ev.seq);
        }
        PQclear(res);
    } while (rows > 0 && rv == 0);
    return rv == 1 ? 0 : rv;
}

typedef struct cv_chain_verifier {
    cv_chain_report *report;
    uint8_t prev[32];
} cv_chain_verifier;

static int
cv_chain_verify_cb(void *arg, const cv_chain_event *ev, const char *prev_hex,
                   const char *hash_hex, cv_error *err)
{
    cv_chain_verifier *v = arg;

    (void)err;
    return cv_chain_check(v->report, v->prev, ev, prev_hex, hash_hex) ? 0 : 1;
}

int
cv_chain_verify_db(cv_db *db, cv_chain_report *report, cv_error *err)
{
    cv_chain_verifier v = {.report = report};
    PGresult *res;
    int rv;

    cv_chain_report_init(report);
    /* One snapshot for the whole walk (the caller's REPEATABLE READ
     * transaction), so concurrent chaining cannot make the pages
     * disagree. */
    if (!db->in_tx)
        return cv_error_set(err, CV_INTERNAL,
                            "verification needs a snapshot transaction");
    if ((rv = cv_chain_walk(db, cv_chain_verify_cb, &v, err)) == 0 &&
        report->valid) {
        if ((res = cv_db_exec(db, "cv_chain_pending", 0, NULL, err)) == NULL)
            rv = err->code;
        else
            report->pending = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
    }
    return rv;
}

typedef struct cv_chain_exporter {
    FILE *out;
    int64_t written;
} cv_chain_exporter;

static int
cv_chain_export_cb(void *arg, const cv_chain_event *ev, const char *prev_hex,
                   const char *hash_hex, cv_error *err)
{
    cv_chain_exporter *x = arg;
    json_t *line = json_object();
    char *text;
    int ok;

    (void)prev_hex;
    json_object_set_new(line, "event", cv_chain_event_json(ev));
    json_object_set_new(line, "hash", cv_chain_str(hash_hex));
    text = json_dumps(line, CV_CHAIN_CANONICAL_FLAGS);
    json_decref(line);
    ok = text != NULL && fprintf(x->out, "%s\n", text) >= 0;
    free(text);
    if (!ok)
        return cv_error_set(err, CV_INTERNAL, "cannot write export");
    x->written++;
    return 0;
}

int
cv_chain_export(cv_db *db, FILE *out, int64_t *written, cv_error *err)
{
    cv_chain_exporter x = {.out = out};
    int rv;

    if (!db->in_tx)
        return cv_error_set(err, CV_INTERNAL,
                            "export needs a snapshot transaction");
    rv = cv_chain_walk(db, cv_chain_export_cb, &x, err);
    *written = x.written;
    return rv;
}

static const char *
cv_chain_json_str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* True when the exported event is exactly the event that was hashed: no
 * extra keys, and no value (a number where a string or null belongs) that
 * the rebuilt event reads differently. */
static bool
cv_chain_file_exact(json_t *event, const cv_chain_event *ev)
{
    char *as_is = json_dumps(event, CV_CHAIN_CANONICAL_FLAGS);
    char *rebuilt = cv_chain_canonical(ev);
    bool same = as_is != NULL && rebuilt != NULL && strcmp(as_is, rebuilt) == 0;

    free(as_is);
    free(rebuilt);
    return same;
}

int
cv_chain_verify_file(FILE *in, cv_chain_report *report)
{
    uint8_t prev[32];
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    cv_chain_report_init(report);
    memset(prev, 0, sizeof(prev));
    while ((n = getline(&line, &cap, in)) > 0) {
        json_t *doc, *event;
        char *record;
        bool ok;

        if (strspn(line, " \t\r\n") == (size_t)n)
            continue; /* blank lines (a trailing newline) carry nothing */
        doc = json_loads(line, 0, NULL);
        event = json_object_get(doc, "event");
        if (doc == NULL || !json_is_object(event)) {
            json_decref(doc);
            report->valid = false;
            report->first_invalid_seq = report->events + 1;
            snprintf(report->reason, sizeof(report->reason),
                     "line %" PRId64 " is not an exported event",
                     report->events + 1);
            break;
        }
        record = json_dumps(json_object_get(event, "record"),
                            JSON_ENCODE_ANY | CV_CHAIN_CANONICAL_FLAGS);
        {
            cv_chain_event ev = {
                .seq = json_integer_value(json_object_get(event, "seq")),
                .kind = cv_chain_json_str(event, "kind"),
                .record_id = cv_chain_json_str(event, "record_id"),
                .plan_id = cv_chain_json_str(event, "plan_id"),
                .provider = cv_chain_json_str(event, "provider"),
                .actor = cv_chain_json_str(event, "actor"),
                .request_id = cv_chain_json_str(event, "request_id"),
                .created_at = cv_chain_json_str(event, "created_at"),
                .record = record,
                .principal = cv_chain_json_str(event, "principal"),
            };
            if (!cv_chain_file_exact(event, &ev)) {
                /* The line shows something the hash does not cover. */
                report->valid = false;
                report->first_invalid_seq = report->events + 1;
                snprintf(report->reason, sizeof(report->reason),
                         "line %" PRId64 " holds fields or values that are "
                         "not part of the chained event",
                         report->events + 1);
                ok = false;
            } else {
                ok = cv_chain_check(report, prev, &ev, NULL,
                                    cv_chain_json_str(doc, "hash"));
            }
        }
        free(record);
        json_decref(doc);
        if (!ok)
            break;
    }
    free(line);
    return ferror(in) ? -1 : 0;
}
