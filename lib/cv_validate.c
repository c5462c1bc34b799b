/*
 * cv_validate.c -- field rules shared by the services (docs/api.md).
 *
 * Each check names the field and the rule in its message, because the
 * message travels unchanged to the REST client as `detail`. Messages never
 * quote the offending value: it may be secret or simply too long.
 *
 * White space here means ASCII white space (space, \t, \n, \v, \f, \r),
 * independent of the process locale. Lengths count UTF-8 code points, so
 * "café" is four characters, as a client author would expect.
 */
#include "cv_validate.h"

#include "cv_redact.h"

#include <inttypes.h>
#include <stdbool.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool
cv_validate_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
}

static const char *
cv_validate_name(const char *field)
{
    return field != NULL ? field : "value";
}

/* Narrows [*b, *e) to exclude leading and trailing white space. */
static void
cv_validate_trim_span(const char *s, size_t *b, size_t *e)
{
    while (*b < *e && cv_validate_is_space((unsigned char)s[*b]))
        (*b)++;
    while (*e > *b && cv_validate_is_space((unsigned char)s[*e - 1]))
        (*e)--;
}

/*
 * Decodes one UTF-8 sequence at s[i] (i < n). Returns its length and sets
 * *cp, or returns 0 for a malformed, overlong, surrogate or out-of-range
 * sequence.
 */
static size_t
cv_validate_utf8_next(const unsigned char *s, size_t i, size_t n, uint32_t *cp)
{
    unsigned char c = s[i];
    size_t len;
    uint32_t v;
    uint32_t min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        v = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        v = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0; /* continuation byte, 0xc0/0xc1 or 0xf5.. */
    }
    if (n - i < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[i + k] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i + k] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

int
cv_validate_text(const char *field, const char *value, size_t max,
                 bool required, cv_error *err)
{
    const unsigned char *u = (const unsigned char *)value;
    const char *name = cv_validate_name(field);
    size_t b = 0;
    size_t e;
    size_t chars = 0;
    bool control = false;

    if (value == NULL) {
        if (required)
            return cv_error_set(err, CV_INVALID_ARGUMENT, "%s is required",
                                name);
        return 0;
    }
    e = strlen(value);
    cv_validate_trim_span(value, &b, &e);
    if (b == e && required)
        return cv_error_set(err, CV_INVALID_ARGUMENT, "%s is required", name);

    /*
     * One pass over the trimmed text (what gets stored): decode, count,
     * and note control characters. Invalid UTF-8 wins over the other
     * faults because nothing else can be judged on undecodable bytes.
     */
    for (size_t i = b; i < e;) {
        uint32_t cp;
        size_t len = cv_validate_utf8_next(u, i, e, &cp);

        if (len == 0)
            return cv_error_set(err, CV_INVALID_ARGUMENT,
                                "%s must be valid UTF-8", name);
        /* C0 (except \t, \n), DEL and the C1 block are Unicode Cc. */
        if ((cp < 0x20 && cp != '\t' && cp != '\n') ||
            (cp >= 0x7f && cp <= 0x9f))
            control = true;
        chars++;
        i += len;
    }
    if (control)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "%s must not contain control characters", name);
    if (chars > max)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "%s must be at most %zu characters", name, max);
    return 0;
}

int
cv_validate_int_range(const char *field, int64_t v, int64_t lo, int64_t hi,
                      cv_error *err)
{
    if (v < lo || v > hi)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "%s must be between %" PRId64 " and %" PRId64,
                            cv_validate_name(field), lo, hi);
    return 0;
}

int
cv_validate_double_range(const char *field, double v, double lo, double hi,
                         cv_error *err)
{
    /* isfinite first: every comparison with NaN is false. */
    if (!isfinite(v) || v < lo || v > hi)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "%s must be between %.15g and %.15g",
                            cv_validate_name(field), lo, hi);
    return 0;
}

int
cv_normalize_ident(const char *field, const char *value, size_t max, char *out,
                   size_t outlen, cv_error *err)
{
    const char *name = cv_validate_name(field);
    size_t b = 0;
    size_t e;

    if (out != NULL && outlen > 0)
        out[0] = '\0';
    /* A caller bug, not bad input: do not blame the client for it. */
    if (out == NULL || max == SIZE_MAX || outlen < max + 1)
        return cv_error_set(err, CV_INTERNAL, "%s: output buffer too small",
                            name);
    if (value == NULL)
        return cv_error_set(err, CV_INVALID_ARGUMENT, "%s is required", name);
    e = strlen(value);
    cv_validate_trim_span(value, &b, &e);
    if (b == e)
        return cv_error_set(err, CV_INVALID_ARGUMENT, "%s is required", name);

    /* Characters first: for an ASCII-only value bytes are characters. */
    for (size_t i = b; i < e; i++) {
        unsigned char c = (unsigned char)value[i];

        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return cv_error_set(err, CV_INVALID_ARGUMENT,
                                "%s must use only a-z, 0-9, '.', '_' and '-'",
                                name);
    }
    if (e - b > max)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "%s must be at most %zu characters", name, max);

    for (size_t i = b; i < e; i++) {
        char c = value[i];

        out[i - b] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[e - b] = '\0';
    /* Identifiers are stored and echoed as they are, never redacted. */
    if (cv_looks_like_secret(out)) {
        out[0] = '\0';
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "%s looks like a secret; identifiers must not "
                            "carry credentials",
                            name);
    }
    return 0;
}

/* ---- identifiers that must not carry secrets ------------------------- */

static bool
cv_validate_is_hexdigit(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

/* s[b..e) is a UUID (8-4-4-4-12 hex). */
static bool
cv_validate_is_uuid(const char *s, size_t b, size_t e)
{
    if (e - b != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        unsigned char c = (unsigned char)s[b + i];

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!cv_validate_is_hexdigit(c)) {
            return false;
        }
    }
    return true;
}

/*
 * Whether one segment of an identifier looks random: 16+ characters that
 * mix letters and digits and change class (lower/upper/digit) at least
 * once in four characters, as hex and base64 do and words do not.
 */
static bool
cv_validate_segment_random(const char *s, size_t b, size_t e)
{
    size_t trans = 0;
    int prev = -1;
    bool alpha = false;
    bool digit = false;

    if (e - b < 16)
        return false;
    for (size_t i = b; i < e; i++) {
        unsigned char c = (unsigned char)s[i];
        int cls = c >= 'a' && c <= 'z'   ? 0
                  : c >= 'A' && c <= 'Z' ? 1
                  : c >= '0' && c <= '9' ? 2
                                         : -1;

        if (cls < 0)
            continue;
        alpha |= cls != 2;
        digit |= cls == 2;
        if (prev >= 0 && cls != prev)
            trans++;
        prev = cls;
    }
    return alpha && digit && trans * 4 >= e - b;
}

bool
cv_looks_like_secret(const char *value)
{
    int count = 0;
    char *r;
    size_t n;
    size_t b;

    if (value == NULL)
        return false;
    n = strlen(value);
    /* Anything the free-text scanner would redact... */
    if ((r = cv_redact(value, &count)) == NULL)
        return true; /* out of memory: refuse rather than store */
    free(r);
    if (count > 0)
        return true;
    /* ...and, stricter for identifiers, any random-looking segment. The
     * public record ids "<prefix>-<16 hex>" and UUIDs are exempt. */
    if (cv_validate_is_uuid(value, 0, n) ||
        (n > 37 && cv_validate_is_uuid(value, n - 36, n)))
        return false;
    b = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && !strchr("-_.:/#@+=", value[i]))
            continue;
        if (cv_validate_segment_random(value, b, i)) {
            bool record_id =
                i == n && i - b == 16 && b > 0 && value[b - 1] == '-';

            for (size_t k = b; record_id && k < i; k++)
                record_id = (value[k] >= '0' && value[k] <= '9') ||
                            (value[k] >= 'a' && value[k] <= 'f');
            if (!record_id)
                return true;
        }
        b = i + 1;
    }
    return false;
}

int
cv_validate_identifier(const char *field, const char *value, size_t max,
                       bool required, cv_error *err)
{
    const char *name = cv_validate_name(field);
    size_t n;

    if (value == NULL || value[0] == '\0') {
        if (required)
            return cv_error_set(err, CV_INVALID_ARGUMENT, "%s is required",
                                name);
        return 0;
    }
    n = strlen(value);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || strchr("._:/#-", c) != NULL) ||
            c == '\0')
            return cv_error_set(err, CV_INVALID_ARGUMENT,
                                "%s must match [A-Za-z0-9._:/#-]{1,%zu}", name,
                                max);
    }
    if (n > max)
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "%s must be at most %zu characters", name, max);
    if (cv_looks_like_secret(value))
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "%s looks like a secret; identifiers must not "
                            "carry credentials",
                            name);
    return 0;
}

bool
cv_request_id_sane(const char *id)
{
    size_t n;

    if (id == NULL || (n = strlen(id)) == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
              c == '-'))
            return false;
    }
    return !cv_looks_like_secret(id);
}

char *
cv_trim_dup(const char *s)
{
    size_t b = 0;
    size_t e;
    char *r;

    if (s == NULL)
        return NULL;
    e = strlen(s);
    cv_validate_trim_span(s, &b, &e);
    r = malloc(e - b + 1);
    if (r == NULL)
        return NULL;
    memcpy(r, s + b, e - b);
    r[e - b] = '\0';
    return r;
}
