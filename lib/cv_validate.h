/*
 * cv_validate.h -- field rules shared by the services.
 *
 * Every function returns 0 when the value passes, or CV_INVALID_ARGUMENT
 * with a message that names the field and the rule; services return that
 * error as it is, so the REST client reads it as `detail`.
 */
#ifndef CV_VALIDATE_H
#define CV_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_error.h"

/*
 * Free text: optional unless required; at most max characters (UTF-8 code
 * points) after trimming; no control characters other than \n and \t.
 * A missing (NULL) or blank required value is "<field> is required"; too
 * long is "<field> must be at most <max> characters".
 */
int cv_validate_text(const char *field, const char *value, size_t max,
                     bool required, cv_error *err);

/* lo <= v <= hi, else "<field> must be between <lo> and <hi>". */
int cv_validate_int_range(const char *field, int64_t v, int64_t lo, int64_t hi,
                          cv_error *err);

/* The same for doubles; NaN and infinities fail. */
int cv_validate_double_range(const char *field, double v, double lo, double hi,
                             cv_error *err);

/*
 * A provider or other identifier: trimmed, lower-cased, then 1..max chars
 * of [a-z0-9._-]. Writes the normalised form to out (outlen >= max + 1).
 * Missing/blank: "<field> is required"; bad characters: "<field> must use
 * only a-z, 0-9, '.', '_' and '-'"; too long: "<field> must be at most
 * <max> characters"; random-looking (cv_looks_like_secret): "<field> looks
 * like a secret; identifiers must not carry credentials".
 */
int cv_normalize_ident(const char *field, const char *value, size_t max,
                       char *out, size_t outlen, cv_error *err);

/*
 * Whether an identifier-like value looks like a credential: cv_redact
 * would redact something in it, or one of its segments (between - _ . : /
 * # @ + =) is 16+ characters that mix letters and digits densely. UUIDs
 * and record ids ("<prefix>-<16 hex>") are public and pass.
 */
bool cv_looks_like_secret(const char *value);

/*
 * An identifier that is stored and echoed verbatim (playbook_id,
 * external_ref, ...): 1..max characters of [A-Za-z0-9._:/#-], and not
 * cv_looks_like_secret. NULL or "" passes unless required ("<field> is
 * required"); otherwise "<field> must match [A-Za-z0-9._:/#-]{1,<max>}",
 * "<field> must be at most <max> characters" or "<field> looks like a
 * secret; identifiers must not carry credentials".
 */
int cv_validate_identifier(const char *field, const char *value, size_t max,
                           bool required, cv_error *err);

/*
 * Whether a client's X-Request-Id may be used and echoed: 1..128 of
 * [A-Za-z0-9._:-] and not cv_looks_like_secret (a random 16+ character
 * segment, a vendor token: ids that could be credentials are not echoed).
 * Otherwise the gateway makes a fresh id.
 */
bool cv_request_id_sane(const char *id);

/* Returns a malloc'd copy of s with leading/trailing white space removed
 * (NULL for NULL input or out of memory). Caller frees with free(). */
char *cv_trim_dup(const char *s);

#endif
