/*
 * cv_transcode.h -- the one generic JSON <-> protobuf-c transcoder.
 *
 * Driven entirely by protobuf-c descriptors; no per-message code. Rules:
 *  - JSON keys are the proto field names (snake_case).
 *  - Nested messages are JSON objects, repeated fields JSON arrays.
 *  - int32/int64/uint32/uint64/sint/fixed: JSON integers (64-bit values may
 *    also be given as a decimal string); a fraction or an out-of-range
 *    value is an error.  float/double: any JSON number.  bool: true/false.
 *    string: JSON string (valid UTF-8, no NUL).  bytes: base64 string.
 *  - enums: the value name with the UPPER_SNAKE enum-name prefix stripped,
 *    lower-cased (AckState ACK_STATE_ACCEPTED <-> "accepted"). Input is
 *    trimmed, lower-cased and '-' becomes '_' first. Value 0 is never
 *    accepted. A bad value, a non-string or null is an error listing the
 *    allowed names: "acknowledgement_state must be acknowledged, accepted,
 *    deferred, escalated, resolved, or dismissed".
 *  - cv.RawJson is written as the JSON value its `json` field holds and
 *    read from any JSON value.
 *  - null for any non-enum field means "not given".
 *  - Unknown keys are ignored (CAVRA clients send extra keys; proto3 JSON
 *    parsers offer the same option). They are never stored.
 *  - Output: every field is written, in descriptor order; an unset optional
 *    field is null, an empty repeated field is [].
 * Errors are CV_INVALID_ARGUMENT naming the field path and the rule, e.g.
 * "escalation_routes[2].age_minutes must be an integer".
 *
 * Ownership: every message this module returns is heap-allocated field by
 * field with malloc, exactly like protobuf_c_message_unpack's output, and
 * is freed with protobuf_c_message_free_unpacked(msg, NULL).
 */
#ifndef CV_TRANSCODE_H
#define CV_TRANSCODE_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "cv_error.h"

/* Allocates an empty (initialised) message of type desc, or NULL when out
 * of memory. Free with protobuf_c_message_free_unpacked(msg, NULL). */
ProtobufCMessage *cv_message_new(const ProtobufCMessageDescriptor *desc);

/*
 * Builds a new message of type desc from a JSON object. Returns 0 and sets
 * *out, or returns CV_INVALID_ARGUMENT (err names the field and rule) and
 * leaves *out NULL. A JSON value that is not an object is "request body
 * must be a JSON object".
 */
int cv_json_to_message(const ProtobufCMessageDescriptor *desc, json_t *json,
                       ProtobufCMessage **out, cv_error *err);

/* The same from JSON text of len bytes; text that is not JSON is
 * "request body is not valid JSON: <where>". An empty body is treated as
 * the empty object {}. */
int cv_json_text_to_message(const ProtobufCMessageDescriptor *desc,
                            const char *text, size_t len,
                            ProtobufCMessage **out, cv_error *err);

/*
 * Reads back a record this codebase stored (its own JSON output): the
 * same rules, except that null means "unset" for enums too, so every
 * record written by cv_message_to_json round-trips. Returns 0 with *out,
 * or CV_DATA_LOSS / CV_INVALID_ARGUMENT when the text does not fit desc.
 */
int cv_json_record_to_message(const ProtobufCMessageDescriptor *desc,
                              const char *text, ProtobufCMessage **out,
                              cv_error *err);

/* Returns a new JSON object (caller json_decref's it), or NULL when out of
 * memory. */
json_t *cv_message_to_json(const ProtobufCMessage *msg);

/*
 * Returns the message as JSON text (malloc'd, caller frees with free()),
 * or NULL when out of memory. flags are jansson dump flags; pass
 * CV_JSON_CANONICAL for the canonical form (sorted keys, compact) that ids
 * and hashes are computed over.
 */
#define CV_JSON_CANONICAL                                                      \
    (JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(15))
/* The form every API answer and stored record is written in: compact, and
 * doubles with 15 significant digits so 0.1 stays "0.1". */
#define CV_JSON_OUTPUT (JSON_COMPACT | JSON_REAL_PRECISION(15))
char *cv_message_to_json_text(const ProtobufCMessage *msg, size_t flags);

/*
 * Sets the scalar field `name` of msg from its text form, as a path or a
 * query parameter arrives ("42", "true", "acknowledged", "plan-id").
 * Returns 0; CV_INVALID_ARGUMENT when the text does not fit the field's
 * type ("limit must be an integer"); CV_INTERNAL when msg has no scalar
 * field of that name (a route table bug).
 */
int cv_message_set_field_text(ProtobufCMessage *msg, const char *name,
                              const char *text, cv_error *err);

/* The JSON name of an enum value ("accepted"), or NULL when the value is
 * not in the enum. The pointer stays valid for the process lifetime. */
const char *cv_enum_json_name(const ProtobufCEnumDescriptor *desc, int value);

/* Whether the values of protobuf type t are JSON integers here: every
 * int, uint, sint, fixed and sfixed type, 32 and 64 bits. */
int cv_json_is_integer_type(ProtobufCType t);

#endif
