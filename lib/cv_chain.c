/*
 * cv_chain.c -- sequencer and verifier of the evidence Merkle log (see
 * cv_chain.h for the design notes, cv_tlog.h for the storage).
 */
#include "cv_chain.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_id.h"
#include "cv_tlog.h"

/* The sequencer lock's key: any constant no other advisory lock uses. */
#define CV_CHAIN_LOCK_KEY "7310007"
#define CV_CHAIN_PAGE     "1000"

/* Timestamps are read back in exactly the form cv_time_format wrote. */
#define CV_CHAIN_ETIME                                                         \
    "to_char(e.created_at AT TIME ZONE 'UTC', "                                \
    "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

const cv_db_statement cv_chain_statements[] = {
    {"cv_chain_try_lock",
     "SELECT pg_try_advisory_xact_lock(" CV_CHAIN_LOCK_KEY ")"},
    /* The same lock for a sequencer round, whose transaction also turns
     * hash and merge joins off: its batch statement must find each event
     * through an index (a plan estimated from a large backlog would scan
     * the whole table per batch); and the rows it returns (up to
     * CAVRA_SEQUENCER_BATCH_MAX events) stay in memory, not in a temp
     * file. */
    {"cv_chain_seq_lock",
     "SELECT pg_try_advisory_xact_lock(" CV_CHAIN_LOCK_KEY "),"
     " set_config('enable_hashjoin', 'off', true),"
     " set_config('enable_mergejoin', 'off', true),"
     " set_config('work_mem', '32MB', true),"
     " coalesce(pg_sequence_last_value('evidence_events_id_seq'), 0)"},
    /* Where the search for new events may start after a restart: the
     * floor the last batch was claimed with. */
    {"cv_chain_floor",
     "SELECT id_floor FROM evidence_leaves ORDER BY seq DESC LIMIT 1"},
    /* Events sequenced before the Merkle log (they carry the old chain's
     * hash; their positions came over from chain_seq, migration 0017)
     * that are not in the tiles yet: leaves first, in order. No other
     * leaf is ever beyond the tree (a batch writes both in one
     * transaction), and one that is (a forgery) is not taken in. Those
     * events are the first leaves (the old chain's positions), so the
     * next $2 leaves hold them all when any is left. Shaped like
     * cv_chain_page, so that no plan can seq-scan the events for the
     * rare ones with a hash: this runs every round, and that plan cost
     * 0.4 s a round at 300,000 events. */
    {"cv_chain_legacy",
     "SELECT l.seq, e.kind, e.record_id, e.plan_id, e.provider, e.actor, "
     "e.request_id, " CV_CHAIN_ETIME ", e.record::text, e.principal"
     " FROM (SELECT seq, event_id FROM evidence_leaves WHERE seq > $1::bigint"
     " ORDER BY seq LIMIT $2::int) l CROSS JOIN LATERAL"
     " (SELECT * FROM evidence_events e WHERE e.id = l.event_id"
     " AND e.hash IS NOT NULL OFFSET 0) e ORDER BY l.seq"},
    /* The sequencer's batch: the next events without a leaf, in id order,
     * searched above the floor ($3: every id below has a leaf or never
     * committed), get positions $1 + 1 .. as new leaves, in one statement,
     * which returns them (in no order: the caller sorts by position) with
     * the event id, the statement snapshot's xmin and, when $4, the
     * sequencer's own transaction id (cv_chain.h). Without events it
     * returns one row of NULL events. The leaf check is a scalar
     * subquery, so it stays one index probe per event above the floor:
     * as NOT EXISTS, a generic plan hash-anti-joined every round with the
     * whole leaves table (a sequential scan of all of it). */
    {"cv_chain_claim",
     "WITH s AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin,"
     " CASE WHEN $4::bool THEN pg_current_xact_id()::text END AS xid),"
     " b AS MATERIALIZED (SELECT u.id,"
     " $1::bigint + row_number() OVER (ORDER BY u.id) AS seq"
     " FROM (SELECT e.id FROM evidence_events e WHERE e.id > $3::bigint"
     " AND (SELECT l.seq FROM evidence_leaves l"
     " WHERE l.event_id = e.id) IS NULL ORDER BY e.id LIMIT $2::int) u),"
     " i AS (INSERT INTO evidence_leaves (seq, event_id, id_floor)"
     " SELECT b.seq, b.id, $3::bigint FROM b)"
     " SELECT b.seq, e.kind, e.record_id, e.plan_id, e.provider, e.actor,"
     " e.request_id, " CV_CHAIN_ETIME ", e.record::text, b.id, s.xmin, s.xid,"
     " e.principal"
     " FROM s LEFT JOIN (b JOIN evidence_events e ON e.id = b.id) ON true"},
    /* A page of leaves, then each one's event by its key: written so that
     * no plan (a generic one misjudges the page's size) can join the
     * page to the whole events table (OFFSET 0 keeps the lateral
     * subquery a per-leaf index lookup). */
    {"cv_chain_page",
     "SELECT l.seq, e.kind, e.record_id, e.plan_id, e.provider, e.actor,"
     " e.request_id, " CV_CHAIN_ETIME ", e.record::text, e.principal"
     " FROM (SELECT seq, event_id FROM evidence_leaves WHERE seq > $1::bigint"
     " ORDER BY seq LIMIT " CV_CHAIN_PAGE ") l CROSS JOIN LATERAL"
     " (SELECT * FROM evidence_events e WHERE e.id = l.event_id OFFSET 0) e"
     " ORDER BY l.seq"},
    {"cv_chain_pending", "SELECT count(*) FROM evidence_unsequenced"},
    /* The tiles (cv_tlog.c). */
    {"cv_tlog_size",
     "SELECT idx * 256 + length(hashes) / 32 FROM evidence_tiles"
     " WHERE level = 0 ORDER BY idx DESC LIMIT 1"},
    {"cv_tlog_tiles",
     "SELECT t.level, t.idx, encode(t.hashes, 'hex') FROM evidence_tiles t"
     " WHERE (t.level, t.idx) IN (SELECT w.l, w.i FROM"
     " unnest($1::int[], $2::bigint[]) AS w(l, i))"},
    {"cv_tlog_tile_one", "SELECT encode(hashes, 'hex') FROM evidence_tiles"
                         " WHERE level = $1::int AND idx = $2::bigint"},
    /* A batch's tile rows: new tiles, and appends to partial ones. */
    {"cv_tlog_tiles_new",
     "INSERT INTO evidence_tiles (level, idx, hashes)"
     " SELECT v.l, v.i, decode(v.h, 'hex') FROM"
     " unnest($1::int[], $2::bigint[], $3::text[]) AS v(l, i, h)"},
    {"cv_tlog_tiles_extend",
     "UPDATE evidence_tiles t SET hashes = t.hashes || decode(v.h, 'hex')"
     " FROM unnest($1::int[], $2::bigint[], $3::int[], $4::text[])"
     " AS v(l, i, o, h)"
     " WHERE t.level = v.l AND t.idx = v.i AND length(t.hashes) = v.o"},
    {"cv_tlog_entries",
     "SELECT l.seq, e.kind, e.record_id, e.plan_id, e.provider, e.actor,"
     " e.request_id, " CV_CHAIN_ETIME ", e.record::text, e.principal"
     " FROM (SELECT seq, event_id FROM evidence_leaves"
     " WHERE seq BETWEEN $1::bigint AND $2::bigint) l CROSS JOIN LATERAL"
     " (SELECT * FROM evidence_events e WHERE e.id = l.event_id OFFSET 0) e"
     " ORDER BY l.seq"},
    {"cv_tlog_leaf_of",
     "SELECT l.seq, e.kind FROM evidence_events e"
     " JOIN evidence_leaves l ON l.event_id = e.id WHERE e.record_id = $1"
     " AND ($2::text IS NULL OR e.kind = $2) ORDER BY e.id LIMIT 2"},
    {"cv_tlog_cp_latest", "SELECT note, tree_size FROM evidence_checkpoints"
                          " ORDER BY id DESC LIMIT 1"},
    {"cv_tlog_cp_size",
     "SELECT note, tree_size FROM evidence_checkpoints"
     " WHERE tree_size = $1::bigint ORDER BY id DESC LIMIT 1"},
    {"cv_tlog_cp_all",
     "SELECT note FROM evidence_checkpoints ORDER BY tree_size, id"},
    {"cv_tlog_cp_put",
     "INSERT INTO evidence_checkpoints (tree_size, root, note)"
     " VALUES ($1::bigint, decode($2, 'hex'), $3)"},
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

/* ---- the canonical form, fast ------------------------------------------
 *
 * The sequencer and the verifier serialize every event; going through
 * jansson (parse into hash tables, sort, dump) was most of their CPU. This
 * writes the same bytes straight from the record's text for the JSON the
 * database hands out, and gives up (NULL: the caller then takes the jansson
 * path, which stays the definition) on anything whose jansson form it does
 * not reproduce exactly: reals, integers of 19 digits or more, "-0",
 * duplicate keys, \u0000, lone surrogates, invalid UTF-8, deep nesting.
 * tests/unit/chain_canonical_test.c compares both on such inputs.
 */

#define CV_CANON_DEPTH 64

typedef struct cv_canon {
    char *out;
    size_t len, cap;
    char *keys; /* scratch: decoded object keys */
    size_t klen, kcap;
    bool fail;
} cv_canon;

typedef struct cv_canon_member {
    size_t key, key_len; /* in cv_canon.keys */
    const char *value;   /* in the input */
} cv_canon_member;

static bool
cv_canon_grow(char **buf, size_t *cap, size_t need)
{
    size_t cap2;
    char *b;

    if (need <= *cap)
        return true;
    cap2 = *cap > 0 ? *cap : 256;
    while (cap2 < need)
        cap2 *= 2;
    if ((b = realloc(*buf, cap2)) == NULL)
        return false;
    *buf = b;
    *cap = cap2;
    return true;
}

static void
cv_canon_put(cv_canon *c, const char *s, size_t n)
{
    if (n == 0)
        return; /* s may be NULL then (an empty key or string) */
    if (c->fail || !cv_canon_grow(&c->out, &c->cap, c->len + n + 1)) {
        c->fail = true;
        return;
    }
    memcpy(c->out + c->len, s, n);
    c->len += n;
}

static const char *
cv_canon_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* Length of the valid UTF-8 sequence at s (the rules jansson checks:
 * no overlong forms, no surrogates, nothing above U+10FFFF), 0 if none. */
static size_t
cv_canon_utf8(const unsigned char *s)
{
    unsigned int cp;
    size_t n;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2, cp = s[0] & 0x1fu;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, cp = s[0] & 0x0fu;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, cp = s[0] & 0x07u;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Appends raw bytes (valid UTF-8, no NUL) as a JSON string, escaped as
 * jansson escapes (", \, control characters; \u00XX in upper case). */
static void
cv_canon_string(cv_canon *c, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t from = 0;

    cv_canon_put(c, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[7];
        size_t el = 2;

        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        cv_canon_put(c, s + from, i - from);
        from = i + 1;
        esc[0] = '\\';
        switch (ch) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            el = 6;
        }
        cv_canon_put(c, esc, el);
    }
    cv_canon_put(c, s + from, n - from);
    cv_canon_put(c, "\"", 1);
}

/* A C string value (NULL: null); false when it is not valid UTF-8. */
static bool
cv_canon_cstr(cv_canon *c, const char *s)
{
    size_t n;

    if (s == NULL) {
        cv_canon_put(c, "null", 4);
        return true;
    }
    n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = cv_canon_utf8((const unsigned char *)s + i);

        if (k == 0)
            return false;
        i += k;
    }
    cv_canon_string(c, s, n);
    return true;
}

static int
cv_canon_hex4(const char *p)
{
    int v = 0;

    for (int i = 0; i < 4; i++) {
        char h = p[i];

        v <<= 4;
        if (h >= '0' && h <= '9')
            v |= h - '0';
        else if (h >= 'a' && h <= 'f')
            v |= h - 'a' + 10;
        else if (h >= 'A' && h <= 'F')
            v |= h - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* Decodes the JSON string at p (at its opening quote) into dst (grown as
 * needed, from *dlen); returns the position after the closing quote, or
 * NULL. */
static const char *
cv_canon_decode(const char *p, char **dst, size_t *dlen, size_t *dcap)
{
    p++;
    for (;;) {
        const char *run = p;
        unsigned char ch;
        char u[4];
        size_t un;
        long cp;

        while ((ch = (unsigned char)*p) >= 0x20 && ch != '"' && ch != '\\' &&
               ch < 0x80)
            p++;
        if (p > run) {
            if (!cv_canon_grow(dst, dcap, *dlen + (size_t)(p - run) + 4))
                return NULL;
            memcpy(*dst + *dlen, run, (size_t)(p - run));
            *dlen += (size_t)(p - run);
        }
        if (ch == '"')
            return p + 1;
        if (ch < 0x20) /* a raw control character, or the end */
            return NULL;
        if (!cv_canon_grow(dst, dcap, *dlen + 8))
            return NULL;
        if (ch >= 0x80) {
            size_t k = cv_canon_utf8((const unsigned char *)p);

            if (k == 0)
                return NULL;
            memcpy(*dst + *dlen, p, k);
            *dlen += k;
            p += k;
            continue;
        }
        /* An escape. */
        switch (p[1]) {
        case '"':
        case '\\':
        case '/':
            u[0] = p[1];
            un = 1;
            p += 2;
            break;
        case 'b':
            u[0] = '\b';
            un = 1;
            p += 2;
            break;
        case 'f':
            u[0] = '\f';
            un = 1;
            p += 2;
            break;
        case 'n':
            u[0] = '\n';
            un = 1;
            p += 2;
            break;
        case 'r':
            u[0] = '\r';
            un = 1;
            p += 2;
            break;
        case 't':
            u[0] = '\t';
            un = 1;
            p += 2;
            break;
        case 'u':
            if ((cp = cv_canon_hex4(p + 2)) <= 0)
                return NULL; /* bad hex, or \u0000 */
            p += 6;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return NULL;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                long lo;

                if (p[0] != '\\' || p[1] != 'u' ||
                    (lo = cv_canon_hex4(p + 2)) < 0xdc00 || lo > 0xdfff)
                    return NULL;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            }
            if (cp < 0x80) {
                u[0] = (char)cp;
                un = 1;
            } else if (cp < 0x800) {
                u[0] = (char)(0xc0 | (cp >> 6));
                u[1] = (char)(0x80 | (cp & 0x3f));
                un = 2;
            } else if (cp < 0x10000) {
                u[0] = (char)(0xe0 | (cp >> 12));
                u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                u[2] = (char)(0x80 | (cp & 0x3f));
                un = 3;
            } else {
                u[0] = (char)(0xf0 | (cp >> 18));
                u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
                u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
                u[3] = (char)(0x80 | (cp & 0x3f));
                un = 4;
            }
            break;
        default:
            return NULL;
        }
        memcpy(*dst + *dlen, u, un);
        *dlen += un;
    }
}

/* The end of the value at p (which must be well formed: the writer checks
 * it), or NULL. */
static const char *
cv_canon_skip(const char *p)
{
    int depth = 0;

    do {
        p = cv_canon_ws(p);
        if (*p == '"') {
            for (p++; *p != '"'; p++) {
                if (*p == '\0')
                    return NULL;
                if (*p == '\\' && *++p == '\0')
                    return NULL;
            }
            p++;
        } else if (*p == '{' || *p == '[') {
            depth++;
            p++;
        } else if (*p == '}' || *p == ']') {
            depth--;
            p++;
        } else if (*p == ',' || *p == ':') {
            p++;
        } else if (*p == '\0') {
            return NULL;
        } else {
            while (*p != '\0' && *p != ',' && *p != '}' && *p != ']' &&
                   *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
                p++;
        }
    } while (depth > 0);
    return p;
}

static const char *cv_canon_value(cv_canon *c, const char *p, int depth);

/* Key order of JSON_SORT_KEYS: bytewise, a prefix first. */
static int
cv_canon_member_cmp(const cv_canon_member *x, const cv_canon_member *y,
                    const char *keys)
{
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int r = memcmp(keys + x->key, keys + y->key, n);

    if (r != 0)
        return r;
    return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

/* Merge sort of m[0..n) by key (tmp holds n members). */
static void
cv_canon_sort(cv_canon_member *m, cv_canon_member *tmp, size_t n,
              const char *keys)
{
    size_t h = n / 2, i = 0, j = h, k = 0;

    if (n < 2)
        return;
    cv_canon_sort(m, tmp, h, keys);
    cv_canon_sort(m + h, tmp, n - h, keys);
    while (i < h && j < n)
        tmp[k++] =
            cv_canon_member_cmp(&m[j], &m[i], keys) < 0 ? m[j++] : m[i++];
    while (i < h)
        tmp[k++] = m[i++];
    while (j < n)
        tmp[k++] = m[j++];
    memcpy(m, tmp, n * sizeof(*m));
}

static const char *
cv_canon_object(cv_canon *c, const char *p, int depth)
{
    cv_canon_member *m = NULL, *m2;
    size_t n = 0, cap = 0, kbase = c->klen;

    p = cv_canon_ws(p + 1);
    if (*p != '}') {
        for (;;) {
            if (*p != '"')
                goto bad;
            if (n == cap) {
                cap = cap > 0 ? cap * 2 : 16;
                if ((m2 = realloc(m, cap * sizeof(*m))) == NULL)
                    goto bad;
                m = m2;
            }
            m[n].key = c->klen;
            if ((p = cv_canon_decode(p, &c->keys, &c->klen, &c->kcap)) == NULL)
                goto bad;
            m[n].key_len = c->klen - m[n].key;
            p = cv_canon_ws(p);
            if (*p != ':')
                goto bad;
            m[n].value = p = cv_canon_ws(p + 1);
            if ((p = cv_canon_skip(p)) == NULL)
                goto bad;
            n++;
            p = cv_canon_ws(p);
            if (*p == '}')
                break;
            if (*p != ',')
                goto bad;
            p = cv_canon_ws(p + 1);
        }
    }
    p++;
    if (n > 1) {
        cv_canon_member *tmp = malloc(n * sizeof(*tmp));

        if (tmp == NULL)
            goto bad;
        cv_canon_sort(m, tmp, n, c->keys);
        free(tmp);
    }
    cv_canon_put(c, "{", 1);
    for (size_t i = 0; i < n && !c->fail; i++) {
        if (i > 0) {
            if (cv_canon_member_cmp(&m[i - 1], &m[i], c->keys) == 0)
                goto bad; /* a duplicate key: jansson keeps the last */
            cv_canon_put(c, ",", 1);
        }
        cv_canon_string(c, c->keys + m[i].key, m[i].key_len);
        cv_canon_put(c, ":", 1);
        if (cv_canon_value(c, m[i].value, depth + 1) == NULL)
            goto bad;
    }
    cv_canon_put(c, "}", 1);
    free(m);
    c->klen = kbase;
    return c->fail ? NULL : p;
bad:
    free(m);
    c->klen = kbase;
    c->fail = true;
    return NULL;
}

/* Writes the value at p; returns the position after it, or NULL. */
static const char *
cv_canon_value(cv_canon *c, const char *p, int depth)
{
    if (c->fail || depth > CV_CANON_DEPTH)
        return NULL;
    p = cv_canon_ws(p);
    switch (*p) {
    case '{':
        return cv_canon_object(c, p, depth);
    case '[':
        cv_canon_put(c, "[", 1);
        p = cv_canon_ws(p + 1);
        if (*p != ']') {
            for (;;) {
                if ((p = cv_canon_value(c, p, depth + 1)) == NULL)
                    return NULL;
                p = cv_canon_ws(p);
                if (*p == ']')
                    break;
                if (*p != ',')
                    return NULL;
                cv_canon_put(c, ",", 1);
                p++;
            }
        }
        cv_canon_put(c, "]", 1);
        return c->fail ? NULL : p + 1;
    case '"': {
        size_t base = c->klen;
        const char *end = cv_canon_decode(p, &c->keys, &c->klen, &c->kcap);

        if (end != NULL)
            cv_canon_string(c, c->keys + base, c->klen - base);
        c->klen = base;
        return c->fail ? NULL : end;
    }
    case 't':
        if (strncmp(p, "true", 4) != 0)
            return NULL;
        cv_canon_put(c, p, 4);
        return p + 4;
    case 'f':
        if (strncmp(p, "false", 5) != 0)
            return NULL;
        cv_canon_put(c, p, 5);
        return p + 5;
    case 'n':
        if (strncmp(p, "null", 4) != 0)
            return NULL;
        cv_canon_put(c, p, 4);
        return p + 4;
    default: {
        /* Integers jansson reads and writes back unchanged only. */
        const char *d = *p == '-' ? p + 1 : p, *e = d;

        while (*e >= '0' && *e <= '9')
            e++;
        if (e == d || e - d > 18 || (*d == '0' && e - d > 1) ||
            (*d == '0' && d > p) || *e == '.' || *e == 'e' || *e == 'E')
            return NULL;
        cv_canon_put(c, p, (size_t)(e - p));
        return e;
    }
    }
}

/* The canonical form without jansson, or NULL when this path does not
 * apply (see above). */
static char *
cv_chain_canonical_fast(const cv_chain_event *ev)
{
    cv_canon c = {0};
    const char *end;
    char seq[32];
    bool ok;

#define CV_CANON_KEY(k) cv_canon_put(&c, "\"" k "\":", sizeof(k) + 2)
    cv_canon_put(&c, "{", 1);
    CV_CANON_KEY("actor");
    ok = cv_canon_cstr(&c, ev->actor);
    cv_canon_put(&c, ",", 1);
    CV_CANON_KEY("created_at");
    ok = ok && cv_canon_cstr(&c, ev->created_at);
    cv_canon_put(&c, ",", 1);
    CV_CANON_KEY("kind");
    ok = ok && cv_canon_cstr(&c, ev->kind);
    cv_canon_put(&c, ",", 1);
    CV_CANON_KEY("plan_id");
    ok = ok && cv_canon_cstr(&c, ev->plan_id);
    cv_canon_put(&c, ",", 1);
    if (ev->principal != NULL) {
        CV_CANON_KEY("principal");
        ok = ok && cv_canon_cstr(&c, ev->principal);
        cv_canon_put(&c, ",", 1);
    }
    CV_CANON_KEY("provider");
    ok = ok && cv_canon_cstr(&c, ev->provider);
    cv_canon_put(&c, ",", 1);
    CV_CANON_KEY("record");
    end = ok ? cv_canon_value(&c, ev->record != NULL ? ev->record : "null", 0)
             : NULL;
    ok = end != NULL && *cv_canon_ws(end) == '\0';
    cv_canon_put(&c, ",", 1);
    CV_CANON_KEY("record_id");
    ok = ok && cv_canon_cstr(&c, ev->record_id);
    cv_canon_put(&c, ",", 1);
    CV_CANON_KEY("request_id");
    ok = ok && cv_canon_cstr(&c, ev->request_id);
    cv_canon_put(&c, ",", 1);
    CV_CANON_KEY("seq");
    cv_canon_put(&c, seq,
                 (size_t)snprintf(seq, sizeof(seq), "%" PRId64, ev->seq));
    cv_canon_put(&c, "}", 1);
#undef CV_CANON_KEY
    free(c.keys);
    if (!ok || c.fail) {
        free(c.out);
        return NULL;
    }
    c.out[c.len] = '\0';
    return c.out;
}

char *
cv_chain_canonical_jansson(const cv_chain_event *ev)
{
    json_t *obj = cv_chain_event_json(ev);
    char *text;

    if (obj == NULL)
        return NULL;
    text = json_dumps(obj, CV_CHAIN_CANONICAL_FLAGS);
    json_decref(obj);
    return text;
}

char *
cv_chain_canonical(const cv_chain_event *ev)
{
    char *text = cv_chain_canonical_fast(ev);

    return text != NULL ? text : cv_chain_canonical_jansson(ev);
}

void
cv_chain_leaf(const char *canonical, cv_merkle_hash out)
{
    cv_merkle_leaf_hash(canonical, strlen(canonical), out);
}

void
cv_chain_hex(const uint8_t hash[32], char out[65])
{
    cv_hex_encode(hash, 32, out);
}

static const char *
cv_chain_value(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

cv_chain_event
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

    /* The principal is the last column of every query that reads events. */
    ev.principal = cv_chain_value(res, row, PQnfields(res) - 1);
    return ev;
}

/* ---- the sequencer ---------------------------------------------------- */

/* Tile levels the sequencer writes (tree levels 0, 8, .. 56). */
#define CV_CHAIN_TILE_LEVELS 8

/* The nodes one batch completes at one tile level: consecutive node
 * indexes from `first` (a level completes its nodes left to right). */
typedef struct cv_chain_levelbuf {
    int64_t first;
    size_t count, cap;
    uint8_t *hashes;
} cv_chain_levelbuf;

typedef struct cv_chain_emitter {
    cv_error *err;
    cv_chain_levelbuf levels[CV_CHAIN_TILE_LEVELS];
} cv_chain_emitter;

static void
cv_chain_emitter_free(cv_chain_emitter *em)
{
    for (int l = 0; l < CV_CHAIN_TILE_LEVELS; l++)
        free(em->levels[l].hashes);
}

/* cv_merkle_emit_fn: keeps the nodes that tiles store (levels 0, 8, ..). */
static int
cv_chain_emit(void *arg, const cv_merkle_node *node, const cv_merkle_hash hash)
{
    cv_chain_emitter *em = arg;
    int level = node->level / CV_TILE_HEIGHT;
    cv_chain_levelbuf *b;

    if (node->level % CV_TILE_HEIGHT != 0 || level >= CV_CHAIN_TILE_LEVELS)
        return 0;
    b = &em->levels[level];
    if (b->count == 0)
        b->first = node->index;
    else if (node->index != b->first + (int64_t)b->count) {
        cv_error_set(em->err, CV_INTERNAL, "evidence tree nodes out of order");
        return -1;
    }
    if (b->count == b->cap) {
        size_t cap = b->cap > 0 ? b->cap * 2 : 256;
        uint8_t *h = realloc(b->hashes, cap * CV_MERKLE_HASH_LEN);

        if (h == NULL) {
            cv_error_set(em->err, CV_INTERNAL, "out of memory");
            return -1;
        }
        b->hashes = h;
        b->cap = cap;
    }
    memcpy(b->hashes + b->count * CV_MERKLE_HASH_LEN, hash, CV_MERKLE_HASH_LEN);
    b->count++;
    return 0;
}

/* A growing array literal ("{a,b,..}") for one statement parameter. */
typedef struct cv_chain_arr {
    char *text;
    size_t len, cap;
    int n;
} cv_chain_arr;

static int
cv_chain_arr_add(cv_chain_arr *a, const char *item, size_t len)
{
    if (a->len + len + 3 > a->cap) {
        size_t cap = (a->len + len + 3) * 2;
        char *t = realloc(a->text, cap);

        if (t == NULL)
            return -1;
        a->text = t;
        a->cap = cap;
    }
    a->text[a->len++] = a->n == 0 ? '{' : ',';
    memcpy(a->text + a->len, item, len);
    a->len += len;
    a->n++;
    a->text[a->len] = '}';
    a->text[a->len + 1] = '\0';
    return 0;
}

static int
cv_chain_arr_int(cv_chain_arr *a, int64_t v)
{
    char s[24];

    return cv_chain_arr_add(a, s,
                            (size_t)snprintf(s, sizeof(s), "%" PRId64, v));
}

/* The tile rows of one batch, as the parameters of two statements: new
 * tiles (level, idx, hashes) and extended partial tiles (level, idx, old
 * length, appended hashes). */
typedef struct cv_chain_tilecall {
    cv_chain_arr l, i, h;        /* new tiles */
    cv_chain_arr el, ei, eo, eh; /* extensions */
} cv_chain_tilecall;

static void
cv_chain_tilecall_free(cv_chain_tilecall *t)
{
    cv_chain_arr *all[] = {&t->l, &t->i, &t->h, &t->el, &t->ei, &t->eo, &t->eh};

    for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++)
        free(all[k]->text);
}

/* Checks a tile statement touched exactly `want` rows. */
static int
cv_chain_tile_rows(PGresult *res, int want, cv_error *err)
{
    bool all = res != NULL && strtol(PQcmdTuples(res), NULL, 10) == want;

    PQclear(res);
    if (!all)
        return res != NULL ? cv_error_set(err, CV_ABORTED,
                                          "evidence tiles moved under the "
                                          "sequencer")
                           : err->code;
    return 0;
}

/* Writes every tile row the batch completed or grew: two statements per
 * batch whatever its size (a partial tile is written once per batch, as
 * an append the trigger of migration 0012 allows). */
static int
cv_chain_tiles_write(cv_db *db, cv_chain_emitter *em, cv_error *err)
{
    cv_chain_tilecall t = {0};
    char *hex = malloc(CV_TILE_WIDTH * CV_MERKLE_HASH_LEN * 2 + 1);
    int rv = 0;

    if (hex == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    for (int level = 0; level < CV_CHAIN_TILE_LEVELS && rv == 0; level++) {
        const cv_chain_levelbuf *b = &em->levels[level];
        size_t done = 0;

        while (done < b->count && rv == 0) {
            int64_t node = b->first + (int64_t)done;
            int64_t idx = node / CV_TILE_WIDTH;
            size_t start = (size_t)(node % CV_TILE_WIDTH);
            size_t n = CV_TILE_WIDTH - start;

            if (n > b->count - done)
                n = b->count - done;
            cv_hex_encode(b->hashes + done * CV_MERKLE_HASH_LEN,
                          n * CV_MERKLE_HASH_LEN, hex);
            if (start == 0)
                rv = cv_chain_arr_int(&t.l, level) ||
                     cv_chain_arr_int(&t.i, idx) ||
                     cv_chain_arr_add(&t.h, hex, n * CV_MERKLE_HASH_LEN * 2);
            else
                rv = cv_chain_arr_int(&t.el, level) ||
                     cv_chain_arr_int(&t.ei, idx) ||
                     cv_chain_arr_int(&t.eo,
                                      (int64_t)start * CV_MERKLE_HASH_LEN) ||
                     cv_chain_arr_add(&t.eh, hex, n * CV_MERKLE_HASH_LEN * 2);
            done += n;
        }
    }
    free(hex);
    if (rv != 0) {
        cv_chain_tilecall_free(&t);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    if (t.el.n > 0) {
        const char *p[4] = {t.el.text, t.ei.text, t.eo.text, t.eh.text};

        rv = cv_chain_tile_rows(
            cv_db_exec(db, "cv_tlog_tiles_extend", 4, p, err), t.el.n, err);
    }
    if (rv == 0 && t.l.n > 0) {
        const char *p[3] = {t.l.text, t.i.text, t.h.text};

        rv = cv_chain_tile_rows(cv_db_exec(db, "cv_tlog_tiles_new", 3, p, err),
                                t.l.n, err);
    }
    cv_chain_tilecall_free(&t);
    return rv;
}

/* Appends the events of res, in chain_seq order (row order[k] holds
 * position size + 1 + k), to the frontier. */
static int
cv_chain_append_rows(cv_chain_emitter *em, cv_merkle_frontier *f, PGresult *res,
                     int rows, const int *order, bool legacy)
{
    for (int k = 0; k < rows; k++) {
        int i = order != NULL ? order[k] : k;
        int64_t seq = f->size + 1;
        cv_chain_event ev = cv_chain_row_event(res, i, seq);
        char *canonical;
        cv_merkle_hash leaf;

        if (legacy && strtoll(PQgetvalue(res, i, 0), NULL, 10) != seq)
            return cv_error_set(em->err, CV_DATA_LOSS,
                                "evidence event %" PRId64
                                " is missing: cannot sequence past it",
                                seq);
        if ((canonical = cv_chain_canonical(&ev)) == NULL)
            return cv_error_set(em->err, CV_DATA_LOSS,
                                "evidence event %s is unreadable",
                                PQgetvalue(res, i, 0));
        cv_chain_leaf(canonical, leaf);
        free(canonical);
        if (cv_merkle_frontier_append(f, leaf, cv_chain_emit, em) != 0)
            return em->err->code != CV_OK
                       ? em->err->code
                       : cv_error_set(em->err, CV_INTERNAL,
                                      "cannot append to the evidence tree");
    }
    return 0;
}

/* The n event rows cv_chain_claim returned, in position order: order[k]
 * is the row given position size + 1 + k. Every position must be there
 * once (the rows come in no order; a hole means another writer got in). */
static int
cv_chain_claim_order(PGresult *res, int n, int64_t size, int **order,
                     cv_error *err)
{
    int *o = malloc((size_t)(n > 0 ? n : 1) * sizeof(*o));

    if (o == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    for (int k = 0; k < n; k++)
        o[k] = -1;
    for (int i = 0; i < n; i++) {
        int64_t k = strtoll(PQgetvalue(res, i, 0), NULL, 10) - size - 1;

        if (k < 0 || k >= n || o[k] != -1) {
            free(o);
            return cv_error_set(err, CV_ABORTED,
                                "evidence events were sequenced concurrently");
        }
        o[k] = i;
    }
    *order = o;
    return 0;
}

/* Where the floor may rise after a claim whose statement snapshot had
 * xmin `xmin`, which gave leaves to `rows` events (the last with id
 * `last_id`) of at most `limit` (cv_chain.h, design notes). */
static void
cv_chain_floor_rise(cv_chain_sequencer *st, uint64_t xmin, int rows, int limit,
                    int64_t last_id)
{
    int64_t to;

    if (st->hz_xid == 0 || xmin < st->hz_xid)
        return; /* a writer that may hold an id <= hz_id is still running */
    /* Every visible event up to hz_id has a leaf now, unless the batch was
     * full: then only those up to the last one it took. */
    to = rows >= limit && last_id < st->hz_id ? last_id : st->hz_id;
    if (to > st->next_floor)
        st->next_floor = to;
    if (to == st->hz_id)
        st->hz_xid = 0;
}

static int
cv_chain_sequence_tx(cv_db *db, cv_chain_sequencer *st, int batch, int *chained,
                     cv_error *err)
{
    cv_chain_emitter em = {.err = err};
    PGresult *res;
    int64_t size, seq_last;
    char sizetext[24], limit[16], floortext[24];
    bool legacy, want_xid;
    int *order = NULL;
    int rows, rv;

    if ((res = cv_db_exec(db, "cv_chain_seq_lock", 0, NULL, err)) == NULL)
        return err->code;
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        /* Another sequencer is at work: nothing to do this round. */
        PQclear(res);
        return 0;
    }
    /* The sequence's last value, read before this transaction has its
     * id (the claim below assigns it). */
    seq_last = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    PQclear(res);
    if ((rv = cv_tlog_size(db, &size, err)) != 0)
        return rv;
    if (!st->loaded || st->frontier.size != size) {
        cv_tlog_reader rd = {db, err};

        st->loaded = false;
        if (cv_merkle_frontier_load(&st->frontier, size, cv_tlog_read, &rd) !=
            0)
            return err->code != CV_OK
                       ? err->code
                       : cv_error_set(err, CV_DATA_LOSS,
                                      "cannot load the evidence tree");
        st->loaded = true;
        /* Another process may have sequenced: its floor holds too. */
        if ((res = cv_db_exec(db, "cv_chain_floor", 0, NULL, err)) == NULL)
            return err->code;
        if (PQntuples(res) == 1) {
            int64_t f = strtoll(PQgetvalue(res, 0, 0), NULL, 10);

            if (!st->floor_loaded || f > st->floor)
                st->floor = f;
        } else if (!st->floor_loaded) {
            st->floor = 0;
        }
        st->floor_loaded = true;
        PQclear(res);
    }
    st->next_floor = st->floor;
    snprintf(sizetext, sizeof(sizetext), "%" PRId64, size);
    snprintf(limit, sizeof(limit), "%d", batch > 0 ? batch : 500);
    snprintf(floortext, sizeof(floortext), "%" PRId64, st->floor);
    {
        const char *p[2] = {sizetext, limit};

        if ((res = cv_db_exec(db, "cv_chain_legacy", 2, p, err)) == NULL)
            return err->code;
    }
    legacy = PQntuples(res) > 0;
    rows = PQntuples(res);
    if (!legacy) {
        /* Positions and the events' contents in one statement. A new
         * horizon needs this transaction's id, and only when ids were
         * taken above the floor (an idle log assigns none). */
        want_xid = st->hz_xid == 0 && seq_last > st->floor;
        {
            const char *p[4] = {sizetext, limit, floortext,
                                want_xid ? "true" : "false"};

            PQclear(res);
            if ((res = cv_db_exec(db, "cv_chain_claim", 4, p, err)) == NULL)
                return err->code;
        }
        rows = PQgetisnull(res, 0, 0) ? 0 : PQntuples(res);
        if ((rv = cv_chain_claim_order(res, rows, size, &order, err)) != 0) {
            PQclear(res);
            return rv;
        }
        cv_chain_floor_rise(
            st, strtoull(PQgetvalue(res, 0, 10), NULL, 10), rows,
            batch > 0 ? batch : 500,
            rows > 0 ? strtoll(PQgetvalue(res, order[rows - 1], 9), NULL, 10)
                     : 0);
        if (want_xid) {
            st->hz_id = seq_last;
            st->hz_xid = strtoull(PQgetvalue(res, 0, 11), NULL, 10);
        }
    }
    if (rows == 0) {
        free(order);
        PQclear(res);
        return 0;
    }
    /* From here on the frontier runs ahead of what is committed: any
     * failure makes the next round reload it. */
    st->loaded = false;
    rv = cv_chain_append_rows(&em, &st->frontier, res, rows, order, legacy);
    if (rv == 0)
        rv = cv_chain_tiles_write(db, &em, err);
    if (rv == 0)
        *chained = rows;
    cv_chain_emitter_free(&em);
    free(order);
    PQclear(res);
    return rv;
}

int
cv_chain_sequence_with(cv_db *db, cv_chain_sequencer *st, int batch,
                       int *chained, cv_error *err)
{
    cv_chain_sequencer local = {0};
    int rv;

    if (st == NULL)
        st = &local;
    *chained = 0;
    if ((rv = cv_db_tx_begin(db, CV_TX_WRITE, err)) != 0)
        return rv;
    rv = cv_chain_sequence_tx(db, st, batch, chained, err);
    if (rv != 0) {
        cv_db_tx_rollback(db);
        st->loaded = false;
        *chained = 0;
        return rv;
    }
    if ((rv = cv_db_tx_commit(db, err)) != 0) {
        st->loaded = false;
        *chained = 0;
        return rv;
    }
    /* The leaves the floor rose past are committed now. */
    if (st->floor_loaded && st->next_floor > st->floor)
        st->floor = st->next_floor;
    if (*chained > 0)
        st->loaded = true; /* the frontier is what was just committed */
    return 0;
}

int
cv_chain_sequence(cv_db *db, int batch, int *chained, cv_error *err)
{
    return cv_chain_sequence_with(db, NULL, batch, chained, err);
}

/* ---- verification ----------------------------------------------------- */

/* The running state of one verification, from the database or a file. */
typedef struct cv_chain_check {
    cv_chain_report *report;
    cv_merkle_frontier f;
    const cv_chain_anchor *anchors;
    size_t n_anchors, next_anchor;
    int64_t last_good_anchor; /* size of the last anchor that matched */
    /* Database only: the stored tree and its current level 0 tile. */
    cv_db *db;
    int64_t tree_size;
    bool have_tree_root;
    cv_merkle_hash tree_root; /* recomputed root at tree_size */
    int64_t tile_idx;
    int tile_width;
    uint8_t tile[CV_TILE_WIDTH * CV_MERKLE_HASH_LEN];
} cv_chain_check;

static void
cv_chain_report_init(cv_chain_report *report)
{
    memset(report, 0, sizeof(*report));
    report->valid = true;
    report->checkpoint_size = -1;
}

static bool cv_chain_bad(cv_chain_check *c, int64_t first, int64_t last,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool
cv_chain_bad(cv_chain_check *c, int64_t first, int64_t last, const char *fmt,
             ...)
{
    va_list ap;

    c->report->valid = false;
    c->report->first_invalid_seq = first;
    c->report->last_invalid_seq = last;
    va_start(ap, fmt);
    vsnprintf(c->report->reason, sizeof(c->report->reason), fmt, ap);
    va_end(ap);
    return false;
}

/* Loads the level 0 tile holding leaf index i (database only). */
static int
cv_chain_check_tile(cv_chain_check *c, int64_t i, cv_error *err)
{
    int64_t idx = i / CV_TILE_WIDTH;
    char l[4] = "0", n[24];
    const char *p[2] = {l, n};
    PGresult *res;
    const char *hex;
    size_t bytes;

    if (c->tile_idx == idx)
        return 0;
    snprintf(n, sizeof(n), "%" PRId64, idx);
    if ((res = cv_db_exec(c->db, "cv_tlog_tile_one", 2, p, err)) == NULL)
        return err->code;
    hex = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
    bytes = strlen(hex) / 2;
    if (bytes > sizeof(c->tile))
        bytes = 0;
    c->tile_width = (int)(bytes / CV_MERKLE_HASH_LEN);
    if (cv_hex_decode(hex, bytes, c->tile) != 0)
        c->tile_width = 0;
    c->tile_idx = idx;
    PQclear(res);
    return 0;
}

/* Checks one event at the next position; false when the log breaks here
 * (report filled). */
static bool
cv_chain_check_event(cv_chain_check *c, const cv_chain_event *ev,
                     const char *stored_leaf_hex, cv_error *err)
{
    int64_t want = c->f.size + 1;
    char *canonical;
    cv_merkle_hash leaf, stored;
    const char *what = ev->kind != NULL ? ev->kind : "?";
    const char *id = ev->record_id != NULL ? ev->record_id : "?";

    if (ev->seq != want)
        return cv_chain_bad(c, want, want,
                            "event %" PRId64 " is missing (found %" PRId64
                            " next)",
                            want, ev->seq);
    if ((canonical = cv_chain_canonical(ev)) == NULL)
        return cv_chain_bad(c, want, want, "event %" PRId64 " is unreadable",
                            want);
    cv_chain_leaf(canonical, leaf);
    free(canonical);
    /* The stored leaf hash: the tiles (database) or the export line. */
    if (c->db != NULL && want <= c->tree_size) {
        if (cv_chain_check_tile(c, want - 1, err) != 0)
            return false;
        if ((want - 1) % CV_TILE_WIDTH >= c->tile_width)
            return cv_chain_bad(c, want, want,
                                "the stored tree has no leaf %" PRId64, want);
        if (memcmp(c->tile + ((want - 1) % CV_TILE_WIDTH) * CV_MERKLE_HASH_LEN,
                   leaf, CV_MERKLE_HASH_LEN) != 0)
            return cv_chain_bad(c, want, want,
                                "event %" PRId64 " (%s %s) was changed after "
                                "it was sequenced (leaf hash differs)",
                                want, what, id);
    }
    if (stored_leaf_hex != NULL &&
        (cv_hex_decode(stored_leaf_hex, CV_MERKLE_HASH_LEN, stored) != 0 ||
         memcmp(stored, leaf, CV_MERKLE_HASH_LEN) != 0))
        return cv_chain_bad(c, want, want,
                            "event %" PRId64 " (%s %s) was changed after "
                            "it was sequenced (leaf hash differs)",
                            want, what, id);
    if (cv_merkle_frontier_append(&c->f, leaf, NULL, NULL) != 0)
        return cv_chain_bad(c, want, want, "cannot append leaf %" PRId64, want);
    c->report->events = c->f.size;
    if (c->db != NULL && c->f.size == c->tree_size) {
        cv_merkle_frontier_root(&c->f, c->tree_root);
        c->have_tree_root = true;
    }
    /* The anchors this size reaches. */
    while (c->next_anchor < c->n_anchors &&
           c->anchors[c->next_anchor].size == c->f.size) {
        cv_merkle_hash root;
        const cv_chain_anchor *a = &c->anchors[c->next_anchor];

        cv_merkle_frontier_root(&c->f, root);
        c->report->checkpoint_size = a->size;
        if (memcmp(root, a->root, CV_MERKLE_HASH_LEN) != 0)
            return cv_chain_bad(
                c, c->last_good_anchor + 1, a->size,
                "leaves %" PRId64 "..%" PRId64 " were rewritten: the first "
                "%" PRId64 " events do not have the root of the witnessed "
                "checkpoint of that size%s",
                c->last_good_anchor + 1, a->size, a->size,
                c->last_good_anchor > 0 ? " (the one before still matches)"
                                        : "");
        c->last_good_anchor = a->size;
        c->next_anchor++;
    }
    return true;
}

/* Checks the anchors and the stored tree once every event was read. */
static void
cv_chain_check_end(cv_chain_check *c, cv_error *err)
{
    cv_chain_report *r = c->report;
    cv_merkle_hash root;

    if (!r->valid)
        return;
    /* Anchors with a size of 0 are met by the empty log. */
    while (c->next_anchor < c->n_anchors &&
           c->anchors[c->next_anchor].size <= 0)
        c->next_anchor++;
    if (c->next_anchor < c->n_anchors) {
        r->checkpoint_size = c->anchors[c->n_anchors - 1].size;
        cv_chain_bad(c, c->f.size + 1, c->anchors[c->n_anchors - 1].size,
                     "%s (%" PRId64 " events, checkpoint of %" PRId64 ")",
                     CV_CHAIN_SHORTER, c->f.size,
                     c->anchors[c->n_anchors - 1].size);
        return;
    }
    if (c->db != NULL) {
        cv_merkle_hash stored;

        if (c->f.size < c->tree_size) {
            cv_chain_bad(c, c->f.size + 1, c->tree_size,
                         "log is shorter than its stored tree (%" PRId64
                         " events, %" PRId64 " leaves)",
                         c->f.size, c->tree_size);
            return;
        }
        if (c->tree_size > 0 && c->have_tree_root) {
            if (cv_tlog_root(c->db, c->tree_size, stored, err) != 0) {
                cv_chain_bad(c, 1, c->tree_size,
                             "the stored tree cannot be read: %s", err->msg);
                return;
            }
            if (memcmp(stored, c->tree_root, CV_MERKLE_HASH_LEN) != 0) {
                cv_chain_bad(c, 1, c->tree_size,
                             "the stored tree's nodes do not match the events "
                             "(tiles were altered)");
                return;
            }
        }
    }
    cv_merkle_frontier_root(&c->f, root);
    cv_chain_hex(root, r->head);
}

static void
cv_chain_check_init(cv_chain_check *c, cv_chain_report *report,
                    const cv_chain_anchor *anchors, size_t n_anchors)
{
    memset(c, 0, sizeof(*c));
    cv_chain_report_init(report);
    c->report = report;
    c->anchors = anchors;
    c->n_anchors = n_anchors;
    c->tile_idx = -1;
    c->f.size = 0;
    c->f.count = 0;
    /* Checkpoints of the empty tree hold for any log. */
    while (c->next_anchor < n_anchors && anchors[c->next_anchor].size <= 0)
        c->next_anchor++;
}

/*
 * Calls visit for every sequenced event in order, a page at a time,
 * inside the caller's transaction (one snapshot). visit returns 0 to go
 * on, 1 to stop, or an error code (with err set). Returns 0 or that code.
 */
typedef int (*cv_chain_visit_fn)(void *arg, const cv_chain_event *ev,
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

            rv = visit(arg, &ev, err);
            snprintf(after, sizeof(after), "%" PRId64, ev.seq);
        }
        PQclear(res);
    } while (rows > 0 && rv == 0);
    return rv == 1 ? 0 : rv;
}

static int
cv_chain_verify_cb(void *arg, const cv_chain_event *ev, cv_error *err)
{
    cv_chain_check *c = arg;

    if (cv_chain_check_event(c, ev, NULL, err))
        return 0;
    return err->code != CV_OK ? err->code : 1;
}

int
cv_chain_verify_db(cv_db *db, const cv_chain_anchor *anchors, size_t n_anchors,
                   cv_chain_report *report, cv_error *err)
{
    cv_chain_check *c = malloc(sizeof(*c));
    PGresult *res;
    int rv;

    if (c == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    cv_chain_check_init(c, report, anchors, n_anchors);
    c->db = db;
    /* One snapshot for the whole walk (the caller's REPEATABLE READ
     * transaction), so concurrent sequencing cannot make the pages and
     * the tiles disagree. */
    if (!db->in_tx) {
        free(c);
        return cv_error_set(err, CV_INTERNAL,
                            "verification needs a snapshot transaction");
    }
    if ((rv = cv_tlog_size(db, &c->tree_size, err)) == 0)
        rv = cv_chain_walk(db, cv_chain_verify_cb, c, err);
    if (rv == 0) {
        cv_chain_check_end(c, err);
        if ((res = cv_db_exec(db, "cv_chain_pending", 0, NULL, err)) == NULL)
            rv = err->code;
        else
            report->pending = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
    }
    report->tree_size = c->tree_size;
    free(c);
    return rv;
}

typedef struct cv_chain_exporter {
    FILE *out;
    int64_t written;
    cv_chain_check *c; /* the level 0 tile cache */
} cv_chain_exporter;

/* Each line carries the leaf hash the stored tree holds for the event (the
 * event's own hash only for a leaf not stored yet), so an export of a
 * tampered database fails offline too. */
static int
cv_chain_export_cb(void *arg, const cv_chain_event *ev, cv_error *err)
{
    cv_chain_exporter *x = arg;
    json_t *line = json_object(), *event = cv_chain_event_json(ev);
    char *text = NULL, *canonical = cv_chain_canonical(ev), hex[65];
    cv_merkle_hash leaf;
    int ok = 0;

    if (event != NULL && canonical != NULL) {
        cv_chain_leaf(canonical, leaf);
        if (ev->seq >= 1 && ev->seq <= x->c->tree_size) {
            if (cv_chain_check_tile(x->c, ev->seq - 1, err) != 0) {
                json_decref(event);
                json_decref(line);
                free(canonical);
                return err->code;
            }
            if ((ev->seq - 1) % CV_TILE_WIDTH < x->c->tile_width)
                memcpy(leaf,
                       x->c->tile +
                           ((ev->seq - 1) % CV_TILE_WIDTH) * CV_MERKLE_HASH_LEN,
                       CV_MERKLE_HASH_LEN);
        }
        cv_chain_hex(leaf, hex);
        json_object_set_new(line, "event", event);
        event = NULL;
        json_object_set_new(line, "leaf_hash", json_string(hex));
        text = json_dumps(line, CV_CHAIN_CANONICAL_FLAGS);
        ok = text != NULL && fprintf(x->out, "%s\n", text) >= 0;
    }
    json_decref(event);
    json_decref(line);
    free(canonical);
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
    cv_chain_report scratch;
    int rv;

    *written = 0;
    if (!db->in_tx)
        return cv_error_set(err, CV_INTERNAL,
                            "export needs a snapshot transaction");
    if ((x.c = malloc(sizeof(*x.c))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    cv_chain_check_init(x.c, &scratch, NULL, 0);
    x.c->db = db;
    if ((rv = cv_tlog_size(db, &x.c->tree_size, err)) == 0)
        rv = cv_chain_walk(db, cv_chain_export_cb, &x, err);
    *written = x.written;
    free(x.c);
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
cv_chain_verify_file(FILE *in, const cv_chain_anchor *anchors, size_t n_anchors,
                     cv_chain_report *report)
{
    cv_chain_check *c = malloc(sizeof(*c));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    cv_error err;
    int rv;

    if (c == NULL)
        return -1;
    cv_chain_check_init(c, report, anchors, n_anchors);
    cv_error_clear(&err);
    while ((n = getline(&line, &cap, in)) > 0) {
        json_t *doc, *event;
        char *record;
        bool ok;

        if (strspn(line, " \t\r\n") == (size_t)n)
            continue; /* blank lines (a trailing newline) carry nothing */
        doc = json_loads(line, 0, NULL);
        event = json_object_get(doc, "event");
        if (doc == NULL || !json_is_object(event) ||
            cv_chain_json_str(doc, "leaf_hash") == NULL) {
            json_decref(doc);
            cv_chain_bad(c, c->f.size + 1, c->f.size + 1,
                         "line %" PRId64 " is not an exported event with "
                         "its leaf_hash",
                         c->f.size + 1);
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
            if (!cv_chain_file_exact(event, &ev))
                /* The line shows something the hash does not cover. */
                ok = cv_chain_bad(c, c->f.size + 1, c->f.size + 1,
                                  "line %" PRId64 " holds fields or values "
                                  "that are not part of the logged event",
                                  c->f.size + 1);
            else
                ok = cv_chain_check_event(
                    c, &ev, cv_chain_json_str(doc, "leaf_hash"), &err);
        }
        free(record);
        json_decref(doc);
        if (!ok)
            break;
    }
    free(line);
    cv_chain_check_end(c, &err);
    free(c);
    rv = ferror(in) ? -1 : 0;
    return rv;
}
