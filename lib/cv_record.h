/*
 * cv_record.h -- small helpers every service uses to build records:
 * free-text intake (validate, trim, redact), actor copies, record ids,
 * JSON text.
 */
#ifndef CV_RECORD_H
#define CV_RECORD_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_error.h"
#include "rpc.pb-c.h"

/* Sets a proto2 optional scalar and its has_ flag in one step. */
#define CV_SET(msg, field, value)                                              \
    do {                                                                       \
        (msg)->has_##field = 1;                                                \
        (msg)->field = (value);                                                \
    } while (0)

/* Product name written into every record. */
#define CV_PRODUCT "CAVRA"

/* schema_version of every metadata object (the original CAVRA's evidence
 * metadata header). */
#define CV_METADATA_SCHEMA "cavra.evidence.metadata.v1"

/*
 * Free-text intake: validates `in` (cv_validate_text rules), trims it and
 * redacts secrets (cv_redact), adding the redactions to *redactions.
 * On success *out is a malloc'd string (caller frees with free(), or hands
 * it to a message freed with protobuf_c_message_free_unpacked), or NULL
 * when the value is absent or blank. Returns 0 or CV_INVALID_ARGUMENT.
 */
int cv_record_text(const char *field, const char *in, size_t max, bool required,
                   char **out, int *redactions, cv_error *err);

/* strdup that maps NULL to NULL; aborts the request path on OOM by
 * returning NULL too (callers check the whole message afterwards). */
char *cv_strdup0(const char *s);

/* A deep copy of any message (by packing and unpacking it): free with
 * protobuf_c_message_free_unpacked(copy, NULL). NULL for NULL or OOM. */
ProtobufCMessage *cv_message_dup(const ProtobufCMessage *msg);

/*
 * The copy of msg that metadata embeds: msg packed and read back as the
 * message type `view`, which declares a subset of msg's fields under the
 * same numbers (the original CAVRA's keys: the Embedded* messages of
 * proto/).
 * The fields view does not declare are dropped, at every depth; nothing
 * else changes. Free with protobuf_c_message_free_unpacked(copy, NULL).
 * NULL for NULL or OOM.
 */
ProtobufCMessage *cv_message_view(const ProtobufCMessage *msg,
                                  const ProtobufCMessageDescriptor *view);

/* A deep copy of actor (NULL for NULL): free with
 * cv__actor__free_unpacked(copy, NULL). */
Cv__Actor *cv_actor_dup(const Cv__Actor *actor);

/* The name to record for a caller: the verified actor when there is one,
 * else `declared` (may be NULL). */
const char *cv_actor_name(const Cv__Actor *actor, const char *declared);

/*
 * Derives a record's id: prefix + 16 hex of SHA-256 over the record's JSON
 * (as built so far, without its id) plus "request_id" (request_id, "" when
 * NULL), as cv_record_id serializes it. Two requests never share an id,
 * and the id is reproducible from what is stored. Returns 0 with *id
 * malloc'd (caller frees, or hands it to the record), or -1 when out of
 * memory.
 */
int cv_record_derive_id(const ProtobufCMessage *record, const char *request_id,
                        const char *prefix, char **id);

/*
 * Reads back a stored record (cv_json_record_to_message) of type desc,
 * first giving records stored before the rename their current key names
 * (schema -> schema_version, report_id -> executive_report_id, also in an
 * embedded executive_report): old evidence is never rewritten, so every
 * reader goes through here. Returns 0 with *out, or CV_DATA_LOSS.
 */
int cv_record_load(const ProtobufCMessageDescriptor *desc, const char *text,
                   ProtobufCMessage **out, cv_error *err);

/*
 * The JSON text a record is stored as (its one copy: replies and metadata
 * are rendered from it), into *text (caller frees). `ready` is false when
 * something else the reply needs could not be built (its metadata): that
 * and a failed conversion are CV_INTERNAL "out of memory", *text NULL.
 */
int cv_record_stored_text(const ProtobufCMessage *record, bool ready,
                          char **text, cv_error *err);

/*
 * The end of a handler that answers with the record it stored: returns
 * rv; when rv is 0, *reply is rep (holding the record), otherwise rep and
 * everything it holds are freed. rep may be NULL.
 */
int cv_record_reply(int rv, ProtobufCMessage *rep, ProtobufCMessage **reply);

#endif
