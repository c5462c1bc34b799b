/*
 * cv_record.c -- record-building helpers shared by the services.
 */
#include "cv_record.h"

#include <stdlib.h>
#include <string.h>

#include "cv_id.h"
#include "cv_redact.h"
#include "cv_transcode.h"
#include "cv_validate.h"

int
cv_record_text(const char *field, const char *in, size_t max, bool required,
               char **out, int *redactions, cv_error *err)
{
    char *trimmed;
    int rv;

    *out = NULL;
    if ((rv = cv_validate_text(field, in, max, required, err)) != 0)
        return rv;
    if (in == NULL)
        return 0;
    if ((trimmed = cv_trim_dup(in)) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    if (trimmed[0] == '\0') {
        free(trimmed);
        return 0;
    }
    *out = cv_redact(trimmed, redactions);
    free(trimmed);
    if (*out == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    return 0;
}

char *
cv_strdup0(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

ProtobufCMessage *
cv_message_dup(const ProtobufCMessage *msg)
{
    ProtobufCMessage *copy;
    uint8_t *buf;
    size_t len;

    if (msg == NULL)
        return NULL;
    len = protobuf_c_message_get_packed_size(msg);
    if ((buf = malloc(len > 0 ? len : 1)) == NULL)
        return NULL;
    protobuf_c_message_pack(msg, buf);
    copy = protobuf_c_message_unpack(msg->descriptor, NULL, len, buf);
    free(buf);
    return copy;
}

/* Frees the fields protobuf-c kept as unknown while unpacking (those the
 * view type does not declare), in m and every message below it. */
static void
cv_message_drop_unknown(ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;

    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        free(m->unknown_fields[i].data);
    free(m->unknown_fields);
    m->unknown_fields = NULL;
    m->n_unknown_fields = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *slot = (const char *)m + f->offset;

        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n =
                *(const size_t *)((const char *)m + f->quantifier_offset);
            ProtobufCMessage *const *items =
                *(ProtobufCMessage *const *const *)slot;

            for (size_t j = 0; j < n && items != NULL; j++)
                cv_message_drop_unknown(items[j]);
        } else if (*(ProtobufCMessage *const *)slot != NULL) {
            cv_message_drop_unknown(*(ProtobufCMessage *const *)slot);
        }
    }
}

ProtobufCMessage *
cv_message_view(const ProtobufCMessage *msg,
                const ProtobufCMessageDescriptor *view)
{
    ProtobufCMessage *copy;
    uint8_t *buf;
    size_t len;

    if (msg == NULL)
        return NULL;
    len = protobuf_c_message_get_packed_size(msg);
    if ((buf = malloc(len > 0 ? len : 1)) == NULL)
        return NULL;
    protobuf_c_message_pack(msg, buf);
    /* protobuf-c's default allocator is malloc/free: so are the unknown
     * fields it keeps. */
    copy = protobuf_c_message_unpack(view, NULL, len, buf);
    free(buf);
    if (copy != NULL)
        cv_message_drop_unknown(copy);
    return copy;
}

Cv__Actor *
cv_actor_dup(const Cv__Actor *actor)
{
    Cv__Actor *copy;

    if (actor == NULL || (copy = malloc(sizeof(*copy))) == NULL)
        return NULL;
    cv__actor__init(copy);
    copy->actor = cv_strdup0(actor->actor);
    copy->subject = cv_strdup0(actor->subject);
    if (actor->n_roles > 0 &&
        (copy->roles = calloc(actor->n_roles, sizeof(char *))) != NULL) {
        for (size_t i = 0; i < actor->n_roles; i++)
            copy->roles[i] = cv_strdup0(actor->roles[i]);
        copy->n_roles = actor->n_roles;
    }
    return copy;
}

const char *
cv_actor_name(const Cv__Actor *actor, const char *declared)
{
    if (actor != NULL && actor->actor != NULL && actor->actor[0] != '\0')
        return actor->actor;
    return declared;
}

int
cv_record_derive_id(const ProtobufCMessage *record, const char *request_id,
                    const char *prefix, char **id)
{
    json_t *material = cv_message_to_json(record);
    char buf[CV_ID_MAX];
    int rv = -1;

    if (material == NULL)
        return -1;
    json_object_set_new(material, "request_id",
                        json_string(request_id != NULL ? request_id : ""));
    if (cv_record_id(prefix, material, buf, sizeof(buf)) == 0 &&
        (*id = strdup(buf)) != NULL)
        rv = 0;
    json_decref(material);
    return rv;
}

/* Renames key `from` of obj to `to` unless `to` is there already. */
static void
cv_record_rename_key(json_t *obj, const char *from, const char *to)
{
    json_t *v;

    if (!json_is_object(obj) || (v = json_object_get(obj, from)) == NULL)
        return;
    if (json_object_get(obj, to) == NULL)
        json_object_set(obj, to, v);
    json_object_del(obj, from);
}

int
cv_record_load(const ProtobufCMessageDescriptor *desc, const char *text,
               ProtobufCMessage **out, cv_error *err)
{
    json_t *root, *rep;
    char *fixed;
    int rv;

    *out = NULL;
    /* Only records stored before the rename need the detour. */
    if (strstr(text, "\"schema\"") == NULL &&
        strstr(text, "\"report_id\"") == NULL)
        return cv_json_record_to_message(desc, text, out, err);
    if ((root = json_loads(text, 0, NULL)) == NULL)
        return cv_error_set(err, CV_DATA_LOSS, "stored record is unreadable");
    rep = json_object_get(root, "executive_report");
    cv_record_rename_key(root, "schema", "schema_version");
    cv_record_rename_key(root, "report_id", "executive_report_id");
    cv_record_rename_key(rep, "schema", "schema_version");
    cv_record_rename_key(rep, "report_id", "executive_report_id");
    fixed = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (fixed == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    rv = cv_json_record_to_message(desc, fixed, out, err);
    free(fixed);
    return rv;
}

int
cv_record_stored_text(const ProtobufCMessage *record, bool ready, char **text,
                      cv_error *err)
{
    *text = ready ? cv_message_to_json_text(record, CV_JSON_OUTPUT) : NULL;
    return *text != NULL ? 0 : cv_error_set(err, CV_INTERNAL, "out of memory");
}

int
cv_record_reply(int rv, ProtobufCMessage *rep, ProtobufCMessage **reply)
{
    if (rv == 0)
        *reply = rep;
    else if (rep != NULL)
        protobuf_c_message_free_unpacked(rep, NULL);
    return rv;
}
