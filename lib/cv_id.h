/*
 * cv_id.h -- SHA-256 helpers and record ids.
 *
 * A record id is "<prefix><16 lowercase hex>": the first 16 hex digits of
 * SHA-256 over the canonical serialization (sorted keys, compact JSON) of
 * the record's identifying material.
 */
#ifndef CV_ID_H
#define CV_ID_H

#include <jansson.h>
#include <stddef.h>

#define CV_SHA256_HEX_LEN 64
#define CV_ID_MAX         96 /* buffer size for any record id */

/* The one hex codec of the project. cv_hex_encode writes the lowercase hex
 * of n bytes plus NUL (2n + 1 bytes) to out. cv_hex_decode reads exactly
 * 2n hex digits (either case) from hex, which must end there, into n
 * bytes of out; returns 0, or -1 for any other text. */
void cv_hex_encode(const void *bytes, size_t n, char *out);
int cv_hex_decode(const char *hex, size_t n, unsigned char *out);

/* Writes the 64 lowercase hex digits of SHA-256(data) plus NUL to out. */
void cv_sha256_hex(const void *data, size_t len,
                   char out[CV_SHA256_HEX_LEN + 1]);

/*
 * Writes prefix + 16 hex of SHA-256(canonical JSON of material) to out.
 * Returns 0, or -1 when outlen is too small or out of memory.
 */
int cv_record_id(const char *prefix, const json_t *material, char *out,
                 size_t outlen);

#endif
