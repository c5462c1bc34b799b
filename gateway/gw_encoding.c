/*
 * gw_encoding.c -- Accept-Encoding negotiation and gzip bodies (see
 * gw_encoding.h for the rules).
 *
 * The header grammar (RFC 9110 12.5.3, 12.4.2):
 *   Accept-Encoding = #( codings [ OWS ";" OWS "q=" qvalue ] )
 *   qvalue          = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
 * Empty list elements are skipped (the list rule allows them); any other
 * parameter than q is skipped with its token or quoted-string value.
 */
#include "gw_encoding.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* zlib's level: 6 (its default) already gets what our JSON gives. */
#define GW_GZIP_LEVEL 6
/* zlib's memLevel: 6, not its default 8. Measured on the three mission
 * answers (1.6, 3.5 and 11 KB): the same output, but 8 allocates 128 KiB
 * of hash and pending buffers per call, which glibc trims and faults in
 * again every time: 100-320 us of CPU a body against 15-42 us. */
#define GW_GZIP_MEMLEVEL 6

void
gw_accept_init(gw_accept *a)
{
    a->q_gzip = -1;
    a->q_star = -1;
    a->q_identity = -1;
    a->malformed = false;
}

static bool
gw_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *
gw_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Parses a qvalue of exactly len bytes into thousandths; -1 if invalid. */
static int
gw_qvalue(const char *s, size_t len)
{
    int q = 0;

    if (len == 0 || (s[0] != '0' && s[0] != '1'))
        return -1;
    if (len == 1)
        return s[0] == '1' ? 1000 : 0;
    if (s[1] != '.' || len > 5)
        return -1;
    for (size_t i = 2, scale = 100; i < 5; i++, scale /= 10) {
        if (i < len) {
            if (s[i] < '0' || s[i] > '9')
                return -1;
            q += (s[i] - '0') * (int)scale;
        }
    }
    if (s[0] == '1')
        return q == 0 ? 1000 : -1;
    return q;
}

/* Skips a token; returns where it ends (== p when there is none). */
static const char *
gw_token(const char *p)
{
    while (gw_tchar(*p))
        p++;
    return p;
}

/* Skips a quoted-string starting at p ('"'); NULL when unterminated. */
static const char *
gw_quoted(const char *p)
{
    for (p++; *p != '\0'; p++) {
        if (*p == '\\') {
            if (*++p == '\0')
                return NULL;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

/* Records q for the coding name[0..len), keeping the lowest per coding. */
static void
gw_accept_note(gw_accept *a, const char *name, size_t len, int q)
{
    int *slot = NULL;

    if ((len == 4 && strncasecmp(name, "gzip", 4) == 0) ||
        (len == 6 && strncasecmp(name, "x-gzip", 6) == 0))
        slot = &a->q_gzip;
    else if (len == 1 && name[0] == '*')
        slot = &a->q_star;
    else if (len == 8 && strncasecmp(name, "identity", 8) == 0)
        slot = &a->q_identity;
    if (slot != NULL && (*slot < 0 || q < *slot))
        *slot = q;
}

/* Parses one list element at p (after its leading OWS); returns the
 * position of the ',' or '\0' that ends it, or NULL when malformed. */
static const char *
gw_accept_element(gw_accept *a, const char *p)
{
    const char *name = p, *end;
    int q = 1000;

    p = gw_token(p);
    if (p == name)
        return NULL;
    end = p;
    for (p = gw_ows(p); *p == ';';) {
        const char *param = gw_ows(p + 1), *pend = gw_token(param), *val;

        if (pend == param || *pend != '=')
            return NULL;
        val = pend + 1;
        if (*val == '"') {
            if ((p = gw_quoted(val)) == NULL)
                return NULL;
        } else {
            p = gw_token(val);
        }
        if (pend - param == 1 && (param[0] == 'q' || param[0] == 'Q')) {
            if (*val == '"' || (q = gw_qvalue(val, (size_t)(p - val))) < 0)
                return NULL;
        } else if (p == val) {
            return NULL;
        }
        p = gw_ows(p);
    }
    if (*p != ',' && *p != '\0')
        return NULL;
    gw_accept_note(a, name, (size_t)(end - name), q);
    return p;
}

void
gw_accept_add(gw_accept *a, const char *value)
{
    const char *p = value;

    if (p == NULL)
        return;
    for (;;) {
        p = gw_ows(p);
        if (*p == '\0')
            return;
        if (*p == ',') {
            p++;
            continue;
        }
        if ((p = gw_accept_element(a, p)) == NULL) {
            a->malformed = true;
            return;
        }
    }
}

bool
gw_accept_gzip(const gw_accept *a)
{
    int q;

    if (a->malformed)
        return false;
    q = a->q_gzip >= 0 ? a->q_gzip : a->q_star >= 0 ? a->q_star : 0;
    if (q <= 0)
        return false;
    /* Identity ranks against gzip only when the client ranked it. */
    return a->q_identity < 0 || a->q_identity <= q;
}

bool
gw_encoding_compressible(const char *type)
{
    size_t n;

    if (type == NULL)
        return false;
    n = strcspn(type, "; ");
    if (n >= 5 && strncasecmp(type, "text/", 5) == 0)
        return true;
    if ((n == 16 && strncasecmp(type, "application/json", n) == 0) ||
        (n == 22 && strncasecmp(type, "application/javascript", n) == 0) ||
        (n == 13 && strncasecmp(type, "image/svg+xml", n) == 0))
        return true;
    /* application/problem+json and the like. */
    return n > 5 && strncasecmp(type + n - 5, "+json", 5) == 0;
}

int
gw_gzip(const void *in, size_t len, char **out, size_t *out_len)
{
    z_stream zs;
    int window = 9;
    uLong bound;
    char *buf;

    *out = NULL;
    *out_len = 0;
    if (len > (size_t)UINT32_MAX / 2)
        return -1;
    /* The smallest window that covers the body (at most zlib's 32 KiB):
     * the same output for small bodies, with less memory to set up. */
    while (window < 15 && ((size_t)1 << window) < len)
        window++;
    memset(&zs, 0, sizeof(zs));
    /* windowBits + 16: a gzip header and trailer instead of zlib's. */
    if (deflateInit2(&zs, GW_GZIP_LEVEL, Z_DEFLATED, window + 16,
                     GW_GZIP_MEMLEVEL, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    bound = deflateBound(&zs, (uLong)len);
    if ((buf = malloc(bound)) == NULL) {
        deflateEnd(&zs);
        return -1;
    }
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)buf;
    zs.avail_out = (uInt)bound;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
        deflateEnd(&zs);
        free(buf);
        return -1;
    }
    *out_len = (size_t)zs.total_out;
    deflateEnd(&zs);
    *out = buf;
    return 0;
}
