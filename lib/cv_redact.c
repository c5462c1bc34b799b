/*
 * cv_redact.c -- the public-safety scanner for free text (docs/api.md).
 *
 * One left-to-right pass copies the text to a growing buffer and replaces
 * whatever looks like a credential with the word REDACTED. It is written
 * by hand so that it cannot blow up on hostile input: every loop is bounded
 * by the input, the cost is linear in its length, and bytes it does not
 * understand (NUL-free binary, any UTF-8) are copied through untouched.
 *
 * Design notes
 *
 * The text is cut into runs of "token" characters (letters, digits, '+',
 * '_', '-', and '/' outside URLs, i.e. the base64/hex/url-safe alphabets).
 * At the start of a run the scanner tries, in order:
 *  1. a URL ("scheme://"): the user-info is dropped, the query becomes
 *     "?REDACTED" (fragment dropped with it), and scheme, host and path
 *     are scanned again with URL detection off; in host and path '/'
 *     separates tokens and random segments of 20+ characters already
 *     count as secrets (webhook URLs);
 *  2. "Bearer <credential>" / "Basic <credential>";
 *  3. the vendor formats (AWS key ids, Slack, GitHub, JWT) at each
 *     sub-word start inside the run;
 *  4. the generic high-entropy test on the run as written out by 3.
 * A "-----BEGIN ... PRIVATE KEY-----" block is handled before all that.
 * "name: value" and "name=value" pairs (and "%3D"/"%3A" URL-encoded, and
 * "<name>value<") are found at the separator instead,
 * by looking back at the name, so a name at the tail of a longer run
 * ("/v1/token=...") is still seen.
 *
 * "High entropy" is judged by class transitions (lower/upper/digit) rather
 * than by length alone: random base64 or hex changes class every two or
 * three characters, kebab-case words and dates almost never do. Record ids
 * ("<prefix>-<16 hex>") and UUIDs are exempt because they are public.
 * Known over-redaction: a 32+ character CamelCase identifier.
 *
 * Idempotence: every replacement writes the exact word REDACTED, each rule
 * treats a value that already is REDACTED as clean, and every decision
 * that could see our own output is made on the output (the pair's name,
 * the generic test of a run), so a second pass sees what the first pass
 * decided on and changes nothing. A '=' is only swallowed as base64
 * padding when no token character follows it, so a "name=value" after a
 * redacted run is still a pair on the second pass.
 */
#include "cv_redact.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CV_REDACT_WORD     "REDACTED"
#define CV_REDACT_WORD_LEN 8
/* Generic tokens: minimum length in prose and inside a URL host/path. */
#define CV_REDACT_MIN_TOKEN     32
#define CV_REDACT_MIN_URL_TOKEN 20
/* Name look-back bound; longer than any secret name we match. */
#define CV_REDACT_NAME_MAX 64
#define CV_REDACT_GAP_MAX  64 /* spaces allowed between name and ':' */

typedef struct cv_redact_out {
    char *buf;
    size_t len;
    size_t cap;
    bool oom;
} cv_redact_out;

typedef struct cv_redact_scan {
    const char *s;
    size_t start; /* [start, end) is the range being scanned */
    size_t end;
    bool url;         /* inside a URL's host, path or fragment */
    bool nested;      /* inside a URL: do not look for another one */
    size_t out_start; /* output length when this range began */
    cv_redact_out *out;
    int *applied;
} cv_redact_scan;

/* ---- characters ------------------------------------------------------ */

static bool
cv_redact_is_lower(unsigned char c)
{
    return c >= 'a' && c <= 'z';
}

static bool
cv_redact_is_upper(unsigned char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool
cv_redact_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool
cv_redact_is_alpha(unsigned char c)
{
    return cv_redact_is_lower(c) || cv_redact_is_upper(c);
}

static bool
cv_redact_is_alnum(unsigned char c)
{
    return cv_redact_is_alpha(c) || cv_redact_is_digit(c);
}

static bool
cv_redact_is_hex(unsigned char c)
{
    return cv_redact_is_digit(c) || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

static bool
cv_redact_is_hspace(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static bool
cv_redact_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

/* c is one of the characters of set (never true for NUL). */
static bool
cv_redact_in(unsigned char c, const char *set)
{
    return c != '\0' && strchr(set, c) != NULL;
}

static bool
cv_redact_is_tok(const cv_redact_scan *sc, unsigned char c)
{
    return cv_redact_is_alnum(c) || c == '+' || c == '_' || c == '-' ||
           (c == '/' && !sc->url);
}

/* Characters of a "name" in a name: value pair. */
static bool
cv_redact_is_name(unsigned char c)
{
    return cv_redact_is_alnum(c) || c == '_' || c == '-';
}

static char
cv_redact_lower(unsigned char c)
{
    return cv_redact_is_upper(c) ? (char)(c - 'A' + 'a') : (char)c;
}

/* s[0..n) equals lit (lower case) ignoring ASCII case. */
static bool
cv_redact_ieq(const char *s, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (cv_redact_lower((unsigned char)s[i]) != lit[i])
            return false;
    }
    return true;
}

static bool
cv_redact_is_word_redacted(const char *s, size_t b, size_t e)
{
    return e - b == CV_REDACT_WORD_LEN &&
           memcmp(s + b, CV_REDACT_WORD, CV_REDACT_WORD_LEN) == 0;
}

/* ---- output ------------------------------------------------------------ */

static void
cv_redact_put(cv_redact_out *o, const char *p, size_t n)
{
    if (o->oom || n == 0)
        return;
    /* Keep one byte spare for the final NUL. */
    if (n > o->cap - o->len - 1) {
        size_t cap = o->cap;
        char *nb;

        while (n > cap - o->len - 1) {
            if (cap > SIZE_MAX / 2) {
                o->oom = true;
                return;
            }
            cap *= 2;
        }
        if ((nb = realloc(o->buf, cap)) == NULL) {
            o->oom = true;
            return;
        }
        o->buf = nb;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

/* Writes REDACTED and counts one redaction. */
static void
cv_redact_emit(cv_redact_scan *sc)
{
    cv_redact_put(sc->out, CV_REDACT_WORD, CV_REDACT_WORD_LEN);
    if (*sc->applied < INT_MAX)
        (*sc->applied)++;
}

/* Replaces s[b..e) by REDACTED unless it is empty or already REDACTED. */
static void
cv_redact_span(cv_redact_scan *sc, size_t b, size_t e)
{
    if (b >= e)
        return;
    if (cv_redact_is_word_redacted(sc->s, b, e))
        cv_redact_put(sc->out, sc->s + b, e - b);
    else
        cv_redact_emit(sc);
}

/* ---- generic high-entropy tokens ------------------------------------ */

static int
cv_redact_class(unsigned char c)
{
    if (cv_redact_is_lower(c))
        return 0;
    if (cv_redact_is_upper(c))
        return 1;
    if (cv_redact_is_digit(c))
        return 2;
    return -1;
}

/* Changes of character class (lower/upper/digit) in s[b..e). */
static size_t
cv_redact_transitions(const char *s, size_t b, size_t e)
{
    size_t t = 0;
    int prev = -1;

    for (size_t i = b; i < e; i++) {
        int cls = cv_redact_class((unsigned char)s[i]);

        if (cls < 0)
            continue;
        if (prev >= 0 && cls != prev)
            t++;
        prev = cls;
    }
    return t;
}

/* Random base64/hex changes class at least once in five characters. */
static bool
cv_redact_dense(size_t len, size_t transitions, size_t min)
{
    return len >= min && transitions >= 6 && transitions * 5 >= len;
}

static bool
cv_redact_is_uuid(const char *s)
{
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!cv_redact_is_hex((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

/*
 * True for public identifiers: a UUID, or "<wordy prefix>[-_]<16 hex>" /
 * "<wordy prefix>[-_]<UUID>" such as "gordackrecoveryesc-0123456789abcdef".
 * The prefix must itself look like words (lower case, few transitions) so
 * that a random token with a hex tail is not waved through.
 */
static bool
cv_redact_is_id(const char *s, size_t b, size_t e)
{
    size_t n = e - b;
    size_t tail = 0;

    if (n == 36 && cv_redact_is_uuid(s + b))
        return true;
    if (n > 37 && cv_redact_is_uuid(s + e - 36) &&
        (s[e - 37] == '-' || s[e - 37] == '_')) {
        tail = 37;
    } else if (n > 17 && (s[e - 17] == '-' || s[e - 17] == '_')) {
        for (size_t i = e - 16; i < e; i++) {
            if (!cv_redact_is_digit((unsigned char)s[i]) &&
                !(s[i] >= 'a' && s[i] <= 'f'))
                return false;
        }
        tail = 17;
    } else {
        return false;
    }
    for (size_t i = b; i < e - tail; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!cv_redact_is_lower(c) && !cv_redact_is_digit(c) && c != '-' &&
            c != '_')
            return false;
    }
    return cv_redact_transitions(s, b, e - tail) <= 2;
}

/*
 * Whether the run s[b..e) is a secret: either one of its pieces between
 * '/', '-', '_' and '+' is long and dense by itself (a token glued to
 * words: "failed-with-key-<token>"), or the run as a whole is (base64url
 * with the odd '-' in it). For the whole-run test, '/'-separated pieces
 * that are public ids do not count, so a path such as
 * "/recovery-escalations/<plan id>/trace" stays readable.
 */
static bool
cv_redact_run_is_secret(const char *s, size_t b, size_t e, bool url)
{
    size_t min = url ? CV_REDACT_MIN_URL_TOKEN : CV_REDACT_MIN_TOKEN;
    size_t len = 0;
    size_t trans = 0;
    size_t p;

    if (e - b < min)
        return false;
    for (p = b; p < e;) {
        size_t q = p;

        while (q < e && !cv_redact_in((unsigned char)s[q], "/-_+"))
            q++;
        if (cv_redact_dense(q - p, cv_redact_transitions(s, p, q), min))
            return true;
        p = q + 1;
    }
    for (p = b; p < e;) {
        size_t q = p;

        while (q < e && s[q] != '/')
            q++;
        if (q > p && !cv_redact_is_id(s, p, q)) {
            len += q - p;
            trans += cv_redact_transitions(s, p, q);
        }
        p = q + 1;
    }
    return cv_redact_dense(len, trans, min);
}

/* ---- vendor token formats (each returns the match end, or 0) -------- */

/* AWS access key ids: AKIA/ASIA/... followed by 16+ [A-Z0-9]. */
static size_t
cv_redact_match_aws(const cv_redact_scan *sc, size_t i)
{
    static const char *const prefixes[] = {"AKIA", "ASIA", "AGPA", "AIDA",
                                           "AROA", "AIPA", "ANPA", "ANVA",
                                           "ABIA", "ACCA"};
    const char *s = sc->s;
    size_t j;

    if (sc->end - i < 20)
        return 0;
    for (size_t k = 0; k < sizeof(prefixes) / sizeof(prefixes[0]); k++) {
        if (memcmp(s + i, prefixes[k], 4) != 0)
            continue;
        j = i + 4;
        while (j < sc->end && (cv_redact_is_upper((unsigned char)s[j]) ||
                               cv_redact_is_digit((unsigned char)s[j])))
            j++;
        if (j - i >= 20 &&
            (j == sc->end || !cv_redact_is_alnum((unsigned char)s[j])))
            return j;
        return 0;
    }
    return 0;
}

/*
 * Slack tokens: xox[abcdeoprs]- and xapp- followed by 8+ [A-Za-z0-9-%]
 * (browser "d" cookies are URL-encoded).
 */
static size_t
cv_redact_match_slack(const cv_redact_scan *sc, size_t i)
{
    const char *s = sc->s;
    size_t j;

    if (sc->end - i >= 5 && memcmp(s + i, "xox", 3) == 0 &&
        cv_redact_in((unsigned char)s[i + 3], "abcdeoprs") && s[i + 4] == '-')
        j = i + 5;
    else if (sc->end - i >= 5 && memcmp(s + i, "xapp-", 5) == 0)
        j = i + 5;
    else
        return 0;
    for (size_t b = j;; j++) {
        if (j == sc->end || !(cv_redact_is_alnum((unsigned char)s[j]) ||
                              s[j] == '-' || s[j] == '%'))
            return j - b >= 8 ? j : 0;
    }
}

/* GitHub tokens: gh[opsur]_ + 20+ alnum, github_pat_ + 20+ [A-Za-z0-9_]. */
static size_t
cv_redact_match_github(const cv_redact_scan *sc, size_t i)
{
    const char *s = sc->s;
    bool pat = false;
    size_t j;
    size_t b;

    if (sc->end - i >= 4 && s[i] == 'g' && s[i + 1] == 'h' &&
        cv_redact_in((unsigned char)s[i + 2], "opsur") && s[i + 3] == '_') {
        j = i + 4;
    } else if (sc->end - i >= 11 && memcmp(s + i, "github_pat_", 11) == 0) {
        j = i + 11;
        pat = true;
    } else {
        return 0;
    }
    b = j;
    while (j < sc->end &&
           (cv_redact_is_alnum((unsigned char)s[j]) || (pat && s[j] == '_')))
        j++;
    return j - b >= 20 ? j : 0;
}

/* s[j..) is 1+ alnum or extra characters; returns the end if min+ long. */
static size_t
cv_redact_match_body(const cv_redact_scan *sc, size_t j, const char *extra,
                     size_t min)
{
    const char *s = sc->s;
    size_t b = j;

    while (j < sc->end && (cv_redact_is_alnum((unsigned char)s[j]) ||
                           cv_redact_in((unsigned char)s[j], extra)))
        j++;
    return j - b >= min ? j : 0;
}

/* Exactly n lower-case hex digits at s[j], not followed by an alnum. */
static bool
cv_redact_hex_exact(const cv_redact_scan *sc, size_t j, size_t n)
{
    if (sc->end - j < n)
        return false;
    for (size_t k = j; k < j + n; k++) {
        if (!cv_redact_is_digit((unsigned char)sc->s[k]) &&
            !(sc->s[k] >= 'a' && sc->s[k] <= 'f'))
            return false;
    }
    return j + n == sc->end || !cv_redact_is_alnum((unsigned char)sc->s[j + n]);
}

/*
 * Prefixed vendor tokens: GitLab, GCP API keys, Stripe, npm, PyPI; then
 * the shapes without a long prefix: Twilio SIDs (AC/SK + 32 hex),
 * SendGrid (SG.<22>.<43>) and Azure AD client secrets (xxxNQ~...).
 */
static size_t
cv_redact_match_prefixed(const cv_redact_scan *sc, size_t i)
{
    static const struct {
        const char *prefix;
        const char *extra;
        size_t min;
    } kinds[] = {
        {"glpat-", "-_", 20}, {"glptt-", "-_", 20}, {"gldt-", "-_", 20},
        {"AIza", "-_", 30},   {"sk_live_", "", 16}, {"rk_live_", "", 16},
        {"sk_test_", "", 16}, {"rk_test_", "", 16}, {"whsec_", "", 16},
        {"npm_", "", 36},     {"pypi-", "-_", 50},
    };
    const char *s = sc->s;
    size_t n = sc->end - i;
    size_t m;

    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        size_t pl = strlen(kinds[k].prefix);

        if (n > pl && memcmp(s + i, kinds[k].prefix, pl) == 0)
            return cv_redact_match_body(sc, i + pl, kinds[k].extra,
                                        kinds[k].min);
    }
    if (n >= 34 &&
        (memcmp(s + i, "AC", 2) == 0 || memcmp(s + i, "SK", 2) == 0) &&
        cv_redact_hex_exact(sc, i + 2, 32))
        return i + 34;
    if (n > 3 && memcmp(s + i, "SG.", 3) == 0 &&
        (m = cv_redact_match_body(sc, i + 3, "-_", 16)) != 0 && m < sc->end &&
        s[m] == '.' && (m = cv_redact_match_body(sc, m + 1, "-_", 30)) != 0)
        return m;
    if (n > 6 && cv_redact_is_digit((unsigned char)s[i + 3]) &&
        s[i + 4] == 'Q' && s[i + 5] == '~') {
        for (size_t k = i; k < i + 3; k++) {
            if (!cv_redact_is_alnum((unsigned char)s[k]))
                return 0;
        }
        return cv_redact_match_body(sc, i + 6, "_~.-", 30);
    }
    return 0;
}

/*
 * JWTs and other base64 JSON ("eyJ" is base64 for '{"'): dot-separated
 * base64/base64url segments. A trailing '.' is left as punctuation.
 */
static size_t
cv_redact_match_jwt(const cv_redact_scan *sc, size_t i)
{
    const char *s = sc->s;
    size_t first = 0;
    size_t j;
    size_t p;

    if (sc->end - i < 3 || memcmp(s + i, "eyJ", 3) != 0)
        return 0;
    j = i + 3;
    for (;;) {
        while (j < sc->end && cv_redact_is_tok(sc, (unsigned char)s[j]))
            j++;
        /* '=' only as segment padding, never the '=' of "name=value". */
        p = j;
        while (p < sc->end && s[p] == '=')
            p++;
        if (p == sc->end || s[p] == '.' ||
            !cv_redact_is_tok(sc, (unsigned char)s[p]))
            j = p;
        /*
         * The first segment alone decides (a real header is 19+ chars):
         * what follows a '.' may itself be redacted, and a second pass
         * must come to the same answer.
         */
        if (first == 0 && (first = j - i) < 16)
            return 0;
        if (j + 1 < sc->end && s[j] == '.' &&
            (cv_redact_is_alnum((unsigned char)s[j + 1]) ||
             cv_redact_in((unsigned char)s[j + 1], "-_")))
            j++;
        else
            break;
    }
    return j;
}

/*
 * Any of the vendor formats at s[i]: returns the match end, or 0. A match
 * that would swallow the word REDACTED is refused: on a second pass the
 * word may stand where the first pass saw text that ended the match, and
 * both passes must agree.
 */
static size_t
cv_redact_match_vendor(const cv_redact_scan *sc, size_t i)
{
    size_t n;

    if ((n = cv_redact_match_aws(sc, i)) == 0 &&
        (n = cv_redact_match_slack(sc, i)) == 0 &&
        (n = cv_redact_match_github(sc, i)) == 0 &&
        (n = cv_redact_match_prefixed(sc, i)) == 0 &&
        (n = cv_redact_match_jwt(sc, i)) == 0)
        return 0;
    for (size_t k = i; k + CV_REDACT_WORD_LEN <= n; k++) {
        if (cv_redact_is_word_redacted(sc->s, k, k + CV_REDACT_WORD_LEN))
            return 0;
    }
    return n;
}

/* ---- Bearer / Basic ------------------------------------------------- */

/* Letters only, and cased like a word: "token", "Token", "TOKEN". */
static bool
cv_redact_word_like(const char *s, size_t b, size_t e)
{
    bool lower = false;
    bool upper = false;

    for (size_t i = b; i < e; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!cv_redact_is_alpha(c))
            return false;
        if (i > b && cv_redact_is_lower(c))
            lower = true;
        if (i > b && cv_redact_is_upper(c))
            upper = true;
    }
    return !(lower && upper);
}

/* Words that follow "bearer" in prose rather than a credential. */
static bool
cv_redact_bearer_stopword(const char *s, size_t b, size_t e)
{
    static const char words[] =
        " token tokens auth authentication authorization scheme header"
        " headers credential credentials of the a an and or is was are in"
        " for to with on at by from must should may will can not no only"
        " required missing invalid expired value ";
    char key[20];
    size_t n = e - b;

    /* Look up " word " so that "a" does not match inside "scheme". */
    if (n == 0 || n + 2 >= sizeof(key))
        return false;
    key[0] = ' ';
    for (size_t i = 0; i < n; i++)
        key[i + 1] = cv_redact_lower((unsigned char)s[b + i]);
    key[n + 1] = ' ';
    key[n + 2] = '\0';
    return strstr(words, key) != NULL;
}

/*
 * "Bearer <x>" / "Basic <x>" at a run start. "Basic" is an everyday word,
 * so its credential must look like base64 (8+ characters, not a word, not
 * a plain number); "Bearer" is followed by a credential unless the next
 * word is one of the prose words above.
 */
static size_t
cv_redact_auth_scheme(cv_redact_scan *sc, size_t i)
{
    const char *s = sc->s;
    size_t w = i;
    size_t j;
    size_t c;
    bool bearer;
    bool digits = true;

    while (w < sc->end && w - i < 7 && cv_redact_is_alpha((unsigned char)s[w]))
        w++;
    bearer = cv_redact_ieq(s + i, w - i, "bearer");
    if (!bearer && !cv_redact_ieq(s + i, w - i, "basic"))
        return 0;
    j = w;
    while (j < sc->end && cv_redact_is_hspace((unsigned char)s[j]))
        j++;
    if (j == w)
        return 0;
    /* Credentials start with a letter or digit; "+x" is not one. */
    if (j == sc->end || !cv_redact_is_alnum((unsigned char)s[j]))
        return 0;
    /* Already redacted, even if more text was glued on afterwards. */
    if (sc->end - j >= CV_REDACT_WORD_LEN &&
        cv_redact_is_word_redacted(s, j, j + CV_REDACT_WORD_LEN) &&
        (j + CV_REDACT_WORD_LEN == sc->end ||
         !cv_redact_is_alnum((unsigned char)s[j + CV_REDACT_WORD_LEN]))) {
        cv_redact_put(sc->out, s + i, j + CV_REDACT_WORD_LEN - i);
        return j + CV_REDACT_WORD_LEN;
    }
    c = j;
    while (c < sc->end &&
           (cv_redact_is_alnum((unsigned char)s[c]) ||
            cv_redact_in((unsigned char)s[c], bearer ? "-._~+/" : "+/")))
        c++;
    while (bearer && c > j && s[c - 1] == '.')
        c--;
    /* '=' padding, but not the '=' of a following "name=value". */
    w = c;
    while (w < sc->end && s[w] == '=')
        w++;
    if (w == sc->end || !cv_redact_is_tok(sc, (unsigned char)s[w]))
        c = w;
    if (c == j)
        return 0;
    for (size_t k = j; k < c; k++) {
        if (!cv_redact_is_digit((unsigned char)s[k]))
            digits = false;
    }
    if (bearer && cv_redact_word_like(s, j, c) &&
        cv_redact_bearer_stopword(s, j, c))
        return 0;
    if (!bearer && (c - j < 8 || cv_redact_word_like(s, j, c) || digits))
        return 0;
    cv_redact_put(sc->out, s + i, j - i);
    cv_redact_emit(sc);
    return c;
}

/* ---- name: value pairs ---------------------------------------------- */

/*
 * Whether the name s[b..e) names a secret. Matching is on the lower-cased
 * name with '-' read as '_', by suffix, so "X-Api-Key", "db_password" and
 * "refresh_token" all match. Short, ambiguous keywords ("pass", "auth")
 * only match whole or after '_', so "bypass" or "compass" are not
 * secrets. *header is set for Authorization and Cookie, whose value after
 * a ':' is the whole rest of a header line.
 */
static bool
cv_redact_secret_name(const char *s, size_t b, size_t e, bool *header)
{
    static const struct {
        const char *kw;
        bool bounded; /* must be whole or follow '_' */
    } names[] = {
        {"authorization", false},
        {"api_key", false},
        {"apikey", false},
        {"token", false},
        {"secret", false},
        {"password", false},
        {"passwd", false},
        {"passphrase", false},
        {"access_key", false},
        {"access_key_id", false},
        {"private_key", false},
        {"secret_key", false},
        {"session", false},
        {"sessionid", false},
        {"session_id", false},
        {"session_key", false},
        {"cookie", false},
        {"signature", false},
        {"credential", false},
        {"credentials", false},
        {"private_key_id", false},
        {"accesskey", false},
        {"accountkey", false},
        {"account_key", false},
        {"secretkey", false},
        {"privatekey", false},
        {"auth", true},
        {"pwd", true},
        {"pass", true},
        {"sig", true},
        {"bearer", true},
    };
    char name[CV_REDACT_NAME_MAX + 1];
    size_t n = e - b;

    if (n == 0 || n > CV_REDACT_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        name[i] = (s[b + i] == '-' || s[b + i] == ' ')
                      ? '_'
                      : cv_redact_lower((unsigned char)s[b + i]);
    name[n] = '\0';

    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        size_t kl = strlen(names[k].kw);

        if (kl > n || memcmp(name + n - kl, names[k].kw, kl) != 0)
            continue;
        if (names[k].bounded && kl < n && name[n - kl - 1] != '_')
            continue;
        *header = (n >= 13 && strcmp(name + n - 13, "authorization") == 0) ||
                  (n >= 6 && strcmp(name + n - 6, "cookie") == 0);
        return true;
    }
    return false;
}

/*
 * If s[b..e) starts with an HTTP auth scheme word and a space, copies them
 * and returns where the credential starts; otherwise returns b.
 */
static size_t
cv_redact_value_scheme(cv_redact_scan *sc, size_t b, size_t e)
{
    static const char *const schemes[] = {
        "bearer",    "basic", "digest",          "token",
        "negotiate", "ntlm",  "aws4-hmac-sha256"};
    const char *s = sc->s;
    size_t w = b;
    size_t sp;

    while (w < e && w - b < 20 &&
           (cv_redact_is_alnum((unsigned char)s[w]) || s[w] == '-'))
        w++;
    sp = w;
    while (sp < e && cv_redact_is_hspace((unsigned char)s[sp]))
        sp++;
    if (w == b || sp == w || sp >= e ||
        cv_redact_is_space((unsigned char)s[sp]))
        return b;
    for (size_t k = 0; k < sizeof(schemes) / sizeof(schemes[0]); k++) {
        if (cv_redact_ieq(s + b, w - b, schemes[k])) {
            cv_redact_put(sc->out, s + b, sp - b);
            return sp;
        }
    }
    return b;
}

/*
 * "-----BEGIN ... PRIVATE KEY-----" at s[i]: copies the armour line and
 * replaces everything up to "-----END " (or the end of the text) by one
 * REDACTED. Returns where scanning continues, or 0 if this is no PEM key.
 */
static size_t
cv_redact_pem(cv_redact_scan *sc, size_t i)
{
    const char *s = sc->s;
    size_t l = i + 11;
    size_t body;
    size_t e;
    bool priv = false;

    if (sc->end - i < 16 || memcmp(s + i, "-----BEGIN ", 11) != 0)
        return 0;
    /*
     * The label is upper-case words. One holding our own word is not a
     * label: a token in it was redacted on a first pass, which then did
     * not take it for a key, and the second pass must agree.
     */
    while (l < sc->end && l - i < 64 &&
           (cv_redact_is_upper((unsigned char)s[l]) || s[l] == ' ')) {
        if (sc->end - l >= 11 && memcmp(s + l, "PRIVATE KEY", 11) == 0)
            priv = true;
        if (sc->end - l >= CV_REDACT_WORD_LEN &&
            cv_redact_is_word_redacted(s, l, l + CV_REDACT_WORD_LEN))
            return 0;
        l++;
    }
    if (!priv || sc->end - l < 5 || memcmp(s + l, "-----", 5) != 0)
        return 0;
    body = l + 5;
    for (e = body; e < sc->end; e++) {
        if (sc->end - e >= 9 && memcmp(s + e, "-----END ", 9) == 0)
            break;
    }
    cv_redact_put(sc->out, s + i, body - i);
    cv_redact_span(sc, body, e);
    return e;
}

/* s[i..] is "%3D" / "%3A" (an URL-encoded '=' or ':'). */
static bool
cv_redact_is_enc_sep(const cv_redact_scan *sc, size_t i)
{
    const char *s = sc->s;

    return sc->end - i >= 3 && s[i] == '%' && s[i + 1] == '3' &&
           cv_redact_in((unsigned char)s[i + 2], "DdAa");
}

/* s[k..] is "%26" / "%20" (an URL-encoded '&' or space): ends a value. */
static bool
cv_redact_is_enc_stop(const cv_redact_scan *sc, size_t k)
{
    const char *s = sc->s;

    return sc->end - k >= 3 && s[k] == '%' && s[k + 1] == '2' &&
           (s[k + 2] == '6' || s[k + 2] == '0');
}

/*
 * The start of the name that ends at o[p] in the output, or p when there
 * is none. Reads past "\"" / "'" quoting (escaped JSON included) and a
 * decoration in parentheses or brackets ("password (prod):"); sets
 * *quoted for a quoted name.
 */
static size_t
cv_redact_name_back(const cv_redact_scan *sc, size_t p, size_t *name_end,
                    bool *quoted)
{
    const char *o = sc->out->buf;
    size_t lo = sc->out_start;
    size_t nb;

    while (p > lo && sc->out->len - p < CV_REDACT_GAP_MAX &&
           cv_redact_is_hspace((unsigned char)o[p - 1]))
        p--;
    if (p > lo && (o[p - 1] == ')' || o[p - 1] == ']')) {
        char open = o[p - 1] == ')' ? '(' : '[';
        size_t q = p - 1;

        while (q > lo && p - q < 40 && o[q - 1] != open && o[q - 1] != '\n')
            q--;
        if (q > lo && o[q - 1] == open) {
            p = q - 1;
            while (p > lo && cv_redact_is_hspace((unsigned char)o[p - 1]))
                p--;
        }
    }
    if (p > lo && (o[p - 1] == '"' || o[p - 1] == '\'')) {
        p--;
        *quoted = true;
        if (p > lo && o[p - 1] == '\\')
            p--;
    }
    nb = p;
    while (nb > lo && p - nb < CV_REDACT_NAME_MAX &&
           cv_redact_is_name((unsigned char)o[nb - 1]))
        nb--;
    *name_end = p;
    return nb;
}

/*
 * Called at a separator at s[i]: ':' or '=' (seplen 1), "%3D"/"%3A"
 * (seplen 3), or the '>' closing an XML start tag. When the name before
 * it names a secret (one word, or two words such as "API key"), copies
 * the separator and redacts the value, returning the position after it;
 * otherwise returns 0 and the caller copies the character.
 *
 * The value is: the contents of a quoted string, plain or JSON-escaped
 * (quotes kept); for header lines ("Authorization:", "Cookie:") the rest
 * of the line; a PEM key block whole; in XML up to the next '<'; after a
 * quoted (JSON-style) name, up to white space or , } ]; inside a URL, up
 * to & ; , or /; URL-encoded, up to %26 or %20; else up to white space, a
 * quote, '&', '<' or '>'. Erring long only costs readability.
 */
static size_t
cv_redact_pair(cv_redact_scan *sc, size_t i, size_t seplen)
{
    const char *s = sc->s;
    const char *o = sc->out->buf;
    size_t p;
    size_t nb;
    size_t j;
    size_t k;
    size_t n;
    bool quoted = false;
    bool header = false;
    bool xml = s[i] == '>';
    bool enc = seplen == 3;

    /*
     * The name is read from what was already written out, not from the
     * input: a name inside text that was redacted is gone, and a second
     * pass must see the same name as this one.
     */
    if (xml) {
        p = sc->out->len;
        nb = p;
        while (nb > sc->out_start && p - nb < CV_REDACT_NAME_MAX &&
               cv_redact_is_name((unsigned char)o[nb - 1]))
            nb--;
        if (nb == sc->out_start || o[nb - 1] != '<')
            return 0;
    } else {
        nb = cv_redact_name_back(sc, sc->out->len, &p, &quoted);
    }
    if (!cv_redact_secret_name(o, nb, p, &header)) {
        /* Two words: "API key", "client secret", "access token". */
        size_t nb2 = nb;

        if (xml || nb < sc->out_start + 2 || o[nb - 1] != ' ' ||
            !cv_redact_is_name((unsigned char)o[nb - 2]))
            return 0;
        nb2 = nb - 1;
        while (nb2 > sc->out_start && p - nb2 < CV_REDACT_NAME_MAX &&
               cv_redact_is_name((unsigned char)o[nb2 - 1]))
            nb2--;
        if (!cv_redact_secret_name(o, nb2, p, &header))
            return 0;
    }

    /* "name://" is the rest of a URL scheme, not a pair. */
    if (s[i] == ':' && sc->end - i >= 3 && memcmp(s + i, "://", 3) == 0)
        return 0;
    j = i + seplen;
    if (!enc && !xml && j < sc->end &&
        ((s[i] == '=' && s[j] == '>') || (s[i] == ':' && s[j] == '=')))
        j++;
    for (;;) {
        if (!xml && j < sc->end && cv_redact_is_hspace((unsigned char)s[j]))
            j++;
        else if (enc && cv_redact_is_enc_stop(sc, j) && s[j + 2] == '0')
            j += 3;
        else
            break;
    }
    if (j >= sc->end || cv_redact_is_space((unsigned char)s[j]))
        return 0; /* no value on this line */
    cv_redact_put(sc->out, s + i, j - i);

    if ((n = cv_redact_pem(sc, j)) != 0)
        return n;
    if (xml) {
        k = j;
        while (k < sc->end && s[k] != '<')
            k++;
        cv_redact_span(sc, j, k);
        return k;
    }
    if (s[j] == '"' || s[j] == '\'' ||
        (s[j] == '\\' && j + 1 < sc->end &&
         (s[j + 1] == '"' || s[j + 1] == '\''))) {
        /* A quoted value; JSON-escaped (\"...\") when it opens with '\'. */
        bool esc = s[j] == '\\';
        size_t ql = esc ? 2 : 1;
        char q = s[j + ql - 1];

        cv_redact_put(sc->out, s + j, ql);
        k = j + ql;
        while (k < sc->end && s[k] != '\n') {
            if (esc && s[k] == '\\' && k + 1 < sc->end && s[k + 1] == q)
                break;
            if (!esc && s[k] == q)
                break;
            /* Skip escaped characters, never past the end. */
            k += (!esc && s[k] == '\\' && k + 1 < sc->end && s[k + 1] != '\n')
                     ? 2
                     : 1;
        }
        cv_redact_span(sc, cv_redact_value_scheme(sc, j + ql, k), k);
        if (k + ql <= sc->end && k < sc->end && s[k + ql - 1] == q) {
            cv_redact_put(sc->out, s + k, ql);
            k += ql;
        }
        return k;
    }

    j = cv_redact_value_scheme(sc, j, sc->end);
    k = j;
    if (header && !quoted && !sc->url && s[i] == ':' && !enc) {
        while (k < sc->end && !cv_redact_in((unsigned char)s[k], "\r\n\"'`"))
            k++;
        while (k > j && cv_redact_is_hspace((unsigned char)s[k - 1]))
            k--;
    } else {
        /* In a URL a value never eats a '/': the authority stays put. */
        const char *stop = sc->url ? "&;,/" : quoted ? "\"'`,}]" : "\"'`&<>";

        while (k < sc->end && !cv_redact_is_space((unsigned char)s[k]) &&
               !cv_redact_in((unsigned char)s[k], stop) &&
               !(enc && cv_redact_is_enc_stop(sc, k)))
            k++;
    }
    /* A JSON literal after a quoted name is not a secret. */
    if (quoted && (cv_redact_ieq(s + j, k - j, "null") ||
                   cv_redact_ieq(s + j, k - j, "true") ||
                   cv_redact_ieq(s + j, k - j, "false"))) {
        cv_redact_put(sc->out, s + j, k - j);
        return k;
    }
    cv_redact_span(sc, j, k);
    /*
     * The escape that ended a URL-encoded value goes out whole: split, its
     * hex digits would start a run glued to what follows and a second pass
     * would see a different value end.
     */
    if (enc && cv_redact_is_enc_stop(sc, k)) {
        cv_redact_put(sc->out, s + k, 3);
        k += 3;
    }
    return k;
}

/* ---- URLs ----------------------------------------------------------- */

static void cv_redact_range(cv_redact_scan *sc);

/*
 * Scans s[b..e), a part of a URL, into the same output: no URL detection
 * inside, and with url set the host/path rules ('/' separates tokens).
 */
static void
cv_redact_url_part(const cv_redact_scan *sc, size_t b, size_t e, bool url)
{
    cv_redact_scan sub = *sc;

    sub.start = b;
    sub.end = e;
    sub.url = url;
    sub.nested = true;
    sub.out_start = sc->out->len;
    cv_redact_range(&sub);
}

/*
 * Characters that may appear in a URL in running text: UTF-8 bytes
 * included (IRIs, a non-ASCII path before the query), and '\' in a
 * JSON-escaped URL ("https:\/\/host\/path").
 */
static bool
cv_redact_is_url_char(unsigned char c, bool esc)
{
    if (c == '\\')
        return esc;
    return c > 0x20 && c != 0x7f && !cv_redact_in(c, "\"'<>`{}|^");
}

/* Length of the "://" (or JSON-escaped ":\/\/") at s[i], or 0. */
static size_t
cv_redact_scheme_sep(const cv_redact_scan *sc, size_t i)
{
    if (sc->end - i >= 3 && memcmp(sc->s + i, "://", 3) == 0)
        return 3;
    if (sc->end - i >= 5 && memcmp(sc->s + i, ":\\/\\/", 5) == 0)
        return 5;
    return 0;
}

/*
 * The URL whose scheme is s[i..sep) and "://" (or ":\/\/") is at sep: drops the
 * user-info, turns the query into "?REDACTED" (and drops the fragment with it),
 * and rescans host, path and a query-less fragment in URL mode. Returns the end
 * of the URL, or 0 (having written nothing) when nothing follows "://".
 */
static size_t
cv_redact_url(cv_redact_scan *sc, size_t i, size_t sep)
{
    const char *s = sc->s;
    size_t seplen = cv_redact_scheme_sep(sc, sep);
    size_t auth = sep + seplen;
    bool esc = seplen == 5;
    size_t host;
    size_t a_end;
    size_t p_end;
    size_t u_end;
    size_t f;

    if (seplen == 0)
        return 0;
    u_end = auth;
    while (u_end < sc->end &&
           cv_redact_is_url_char((unsigned char)s[u_end], esc))
        u_end++;
    /* Sentence punctuation after a URL is not part of it. */
    while (u_end > auth && cv_redact_in((unsigned char)s[u_end - 1],
                                        esc ? ".,;:!?)]}\\" : ".,;:!?)]}"))
        u_end--;
    if (u_end == auth)
        return 0;

    a_end = auth;
    host = auth;
    while (a_end < u_end && !cv_redact_in((unsigned char)s[a_end], "/?#")) {
        if (s[a_end] == '@')
            host = a_end + 1;
        a_end++;
    }
    /*
     * The scheme is scanned like any run (it may be a token glued to
     * "://"), in the same mode a run would be, so both passes agree.
     */
    cv_redact_url_part(sc, i, sep, false);
    cv_redact_put(sc->out, s + sep, seplen);
    /*
     * User-info is dropped, not replaced: the URL stays usable. With
     * nothing after it, it is replaced instead: a bare "scheme://" is no
     * URL to a second pass, which must still see one.
     */
    if (host > auth && host >= u_end) {
        cv_redact_emit(sc);
        return u_end;
    }
    if (host > auth + 1 && *sc->applied < INT_MAX)
        (*sc->applied)++;
    p_end = host;
    while (p_end < u_end && s[p_end] != '?' && s[p_end] != '#')
        p_end++;
    cv_redact_url_part(sc, host, p_end, true);

    f = p_end;
    if (p_end < u_end && s[p_end] == '?') {
        size_t q = p_end + 1;
        size_t q_end = q;

        while (q_end < u_end && s[q_end] != '#')
            q_end++;
        cv_redact_put(sc->out, "?", 1);
        if (q_end > q && !cv_redact_is_word_redacted(s, q, q_end)) {
            cv_redact_emit(sc);
            return u_end; /* the fragment goes with the query */
        }
        cv_redact_put(sc->out, s + q, q_end - q);
        f = q_end;
    }
    if (f < u_end) {
        /* s[f] == '#'. Key=value fragments carry OAuth tokens. */
        cv_redact_put(sc->out, "#", 1);
        if (cv_redact_is_word_redacted(s, f + 1, u_end))
            cv_redact_put(sc->out, s + f + 1, u_end - f - 1);
        else if (memchr(s + f + 1, '=', u_end - f - 1) != NULL)
            cv_redact_emit(sc);
        else
            cv_redact_url_part(sc, f + 1, u_end, true);
    }
    return u_end;
}

/* "scheme://..." at a run start; returns the end of the URL, or 0. */
static size_t
cv_redact_url_at_scheme(cv_redact_scan *sc, size_t i)
{
    const char *s = sc->s;
    size_t j = i;

    if (!cv_redact_is_alpha((unsigned char)s[i]))
        return 0;
    while (j < sc->end && j - i <= 32 &&
           (cv_redact_is_alnum((unsigned char)s[j]) ||
            cv_redact_in((unsigned char)s[j], "+-")))
        j++;
    if (cv_redact_scheme_sep(sc, j) == 0)
        return 0;
    return cv_redact_url(sc, i, j);
}

/*
 * A webhook URL whose path is the secret ("hooks.slack.com/services/...")
 * at s[i]: copies host and fixed path, redacts the rest of the URL.
 * Returns the end, or 0.
 */
static size_t
cv_redact_webhook(cv_redact_scan *sc, size_t i)
{
    static const char *const hooks[] = {
        "hooks.slack.com/services/", "hooks.slack.com/workflows/",
        "discord.com/api/webhooks/", "discordapp.com/api/webhooks/"};
    const char *s = sc->s;

    for (size_t k = 0; k < sizeof(hooks) / sizeof(hooks[0]); k++) {
        size_t hl = strlen(hooks[k]);
        size_t e = i + hl;

        if (sc->end - i < hl || memcmp(s + i, hooks[k], hl) != 0)
            continue;
        while (e < sc->end && cv_redact_is_url_char((unsigned char)s[e], true))
            e++;
        while (e > i + hl && cv_redact_in((unsigned char)s[e - 1], ".,;:!?)]}"))
            e--;
        cv_redact_put(sc->out, s + i, hl);
        cv_redact_span(sc, i + hl, e);
        return e;
    }
    return 0;
}

/*
 * Whether out[b..e) is a git object id (7 to 64 hex digits) right after
 * the word "commit" or "revision" ("commit 9fceb02", ".../commit/<sha>"):
 * those are public and operators quote them.
 */
static bool
cv_redact_is_commit_id(const cv_redact_scan *sc, size_t b, size_t e)
{
    static const char *const words[] = {"commit", "commits", "revision", "rev"};
    const char *o = sc->out->buf;
    size_t p = b;
    size_t w;

    if (e - b < 7 || e - b > 64)
        return false;
    for (size_t k = b; k < e; k++) {
        if (!cv_redact_is_hex((unsigned char)o[k]))
            return false;
    }
    while (p > sc->out_start && b - p < 3 &&
           cv_redact_in((unsigned char)o[p - 1], " :/#"))
        p--;
    if (p == b)
        return false;
    w = p;
    while (w > sc->out_start && p - w < 10 &&
           cv_redact_is_alpha((unsigned char)o[w - 1]))
        w--;
    if (w > sc->out_start && cv_redact_is_alnum((unsigned char)o[w - 1]))
        return false;
    for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
        if (cv_redact_ieq(o + w, p - w, words[k]))
            return true;
    }
    return false;
}

/* ---- the scanner ---------------------------------------------------- */

/*
 * Handles the run of token characters starting at s[i]; returns where
 * scanning continues.
 */
static size_t
cv_redact_run(cv_redact_scan *sc, size_t i)
{
    const char *s = sc->s;
    size_t e;
    size_t k;
    size_t m;
    size_t n;
    size_t o0;
    int a0;

    if (!sc->nested && (n = cv_redact_url_at_scheme(sc, i)) != 0)
        return n;
    if ((n = cv_redact_auth_scheme(sc, i)) != 0)
        return n;
    if ((n = cv_redact_webhook(sc, i)) != 0)
        return n;

    e = i;
    while (e < sc->end && cv_redact_is_tok(sc, (unsigned char)s[e]))
        e++;

    /*
     * Vendor formats first, at every sub-word start ("key/AKIA...",
     * "x-ghp_..."). Then the generic test runs on the run as written out,
     * with those already replaced: that is exactly the run a second pass
     * would see, so the two passes agree and the result is idempotent.
     * For the same reason a sub-word start is judged on the output, and
     * a match that ran past the run ('.' in a JWT, '%' in a Slack cookie)
     * carries on into the token characters right after it: REDACTED and
     * those form one run on a second pass.
     */
    o0 = sc->out->len;
    a0 = *sc->applied;
    k = i;
    for (;;) {
        while (k < e) {
            if (k == i || !cv_redact_is_alnum(
                              (unsigned char)sc->out->buf[sc->out->len - 1])) {
                if ((m = cv_redact_match_vendor(sc, k)) != 0) {
                    cv_redact_emit(sc);
                    k = m;
                    continue;
                }
            }
            cv_redact_put(sc->out, s + k, 1);
            k++;
        }
        if (k == e)
            break;
        e = k;
        while (e < sc->end && cv_redact_is_tok(sc, (unsigned char)s[e]))
            e++;
    }

    /*
     * Base64 '=' padding goes with the run only when the run is redacted,
     * so that "token= abc" still reaches the pair check.
     */
    n = e;
    while (n < sc->end && s[n] == '=')
        n++;
    if (n < sc->end && cv_redact_is_tok(sc, (unsigned char)s[n]))
        n = e; /* "x==y": not padding */
    if (!sc->out->oom &&
        cv_redact_run_is_secret(sc->out->buf, o0, sc->out->len, sc->url) &&
        !cv_redact_is_commit_id(sc, o0, sc->out->len)) {
        /* One redaction for the whole run, whatever it replaced inside. */
        sc->out->len = o0;
        *sc->applied = a0;
        cv_redact_emit(sc);
        return n;
    }
    return k;
}

static void
cv_redact_range(cv_redact_scan *sc)
{
    const char *s = sc->s;
    size_t i = sc->start;
    size_t n;

    while (i < sc->end && !sc->out->oom) {
        unsigned char c = (unsigned char)s[i];

        /*
         * A "://" whose scheme was not at a run start (glued to a
         * redacted token, say) still starts a URL.
         */
        if (c == ':' && !sc->nested && cv_redact_scheme_sep(sc, i) != 0 &&
            (n = cv_redact_url(sc, i, i)) != 0) {
            i = n;
        } else if (c == '-' && (n = cv_redact_pem(sc, i)) != 0) {
            i = n;
        } else if ((c == ':' || c == '=' || c == '>') &&
                   (n = cv_redact_pair(sc, i, 1)) != 0) {
            i = n;
        } else if (cv_redact_is_enc_sep(sc, i) &&
                   (n = cv_redact_pair(sc, i, 3)) != 0) {
            i = n;
        } else if (cv_redact_is_tok(sc, c) &&
                   (i == sc->start ||
                    !cv_redact_is_tok(sc, (unsigned char)s[i - 1]))) {
            i = cv_redact_run(sc, i);
        } else {
            cv_redact_put(sc->out, s + i, 1);
            i++;
        }
    }
}

char *
cv_redact(const char *text, int *count)
{
    cv_redact_out out = {0};
    cv_redact_scan sc = {0};
    int applied = 0;
    size_t n;

    if (text == NULL)
        return NULL;
    n = strlen(text);
    if (n > SIZE_MAX - 64)
        return NULL;
    out.cap = n + 64;
    if ((out.buf = malloc(out.cap)) == NULL)
        return NULL;

    sc.s = text;
    sc.start = 0;
    sc.end = n;
    sc.out = &out;
    sc.applied = &applied;
    cv_redact_range(&sc);
    if (out.oom) {
        free(out.buf);
        return NULL;
    }
    out.buf[out.len] = '\0';
    if (count != NULL)
        *count = *count > INT_MAX - applied ? INT_MAX : *count + applied;
    return out.buf;
}
