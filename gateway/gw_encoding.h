/*
 * gw_encoding.h -- response compression: Accept-Encoding negotiation and
 * gzip bodies.
 *
 * Design notes:
 *  - Only gzip is offered (zlib). A request gets a gzip body when its
 *    Accept-Encoding gives gzip (or x-gzip, or "*" when gzip is not named)
 *    a q-value above 0, and does not rank identity above it. No header,
 *    "identity" only, "gzip;q=0", or a header that cannot be parsed: the
 *    plain body (identity is always acceptable unless refused, RFC 9110
 *    12.5.3, and we never answer 406).
 *  - A coding named more than once (in one header or over several header
 *    lines) counts with its lowest q-value: a refusal is never overridden.
 *  - Only textual types are compressed (JSON, any text type, SVG, JavaScript),
 *    and only bodies of at least GW_GZIP_MIN_BYTES: below that, the gzip
 *    header and trailer (18 bytes) eat most of the gain. Raw bytes
 *    (application/octet-stream: C2SP hash tiles, which are SHA-256 output
 *    and do not shrink, and entry bundles, which tlog clients fetch by
 *    path and hash as they are) are always sent as they are.
 *  - Whether a body is compressed depends only on the request's
 *    Accept-Encoding, its type and its size, so every answer of a
 *    compressible type says Vary: Accept-Encoding.
 */
#ifndef GW_ENCODING_H
#define GW_ENCODING_H

#include <stdbool.h>
#include <stddef.h>

/* Bodies shorter than this are never compressed. */
#define GW_GZIP_MIN_BYTES 256

/* What the client's Accept-Encoding header lines said, accumulated. */
typedef struct gw_accept {
    int q_gzip;     /* thousandths; -1: not named */
    int q_star;     /* "*" */
    int q_identity; /* "identity" */
    bool malformed; /* a list element could not be parsed */
} gw_accept;

/* Starts an empty accumulation (as if the header were absent). */
void gw_accept_init(gw_accept *a);

/* Adds one Accept-Encoding header value (NULL is ignored). */
void gw_accept_add(gw_accept *a, const char *value);

/* True when the answer should be gzip. */
bool gw_accept_gzip(const gw_accept *a);

/* True for the content types worth compressing (see the notes above). */
bool gw_encoding_compressible(const char *content_type);

/*
 * Compresses len bytes of in into a gzip member (RFC 1952). Returns 0
 * with *out (malloc'd, caller frees) and *out_len, or -1 (out of memory,
 * zlib error): the caller then sends the body as it is.
 */
int gw_gzip(const void *in, size_t len, char **out, size_t *out_len);

#endif
