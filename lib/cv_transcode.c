/*
 * cv_transcode.c -- the generic JSON <-> protobuf-c transcoder.
 *
 * The gateway turns every REST body into the request message of an RPC and
 * every reply message back into JSON with these functions; the services use
 * the canonical text form to compute record ids. Nothing here knows a
 * message type: each conversion walks the protobuf-c descriptors (fields in
 * tag order, has_ flags at quantifier_offset, values at offset). The rules
 * are in cv_transcode.h.
 *
 * Design notes:
 *  - A message is built into a fresh cv_message_new() object and every
 *    value is stored the moment it is complete, so a half-built message is
 *    always in a state protobuf_c_message_free_unpacked() can free: arrays
 *    are calloc'd with their count set before they are filled (NULL slots
 *    are skipped by the free), a oneof case is set only after its member
 *    is stored. Any error frees the whole message; nothing leaks.
 *  - Recursion follows the descriptors, not the JSON, and stops at
 *    CV_TC_MAX_DEPTH nested messages, so a recursive message type cannot
 *    be used to exhaust the stack. Unknown keys are never walked.
 *  - Error messages name the field path and the rule but never quote the
 *    offending value: a REST client reads them back and values may be
 *    secrets.
 *  - cv_enum_json_name() hands out pointers that live for the process: the
 *    lower-cased names of an enum are built once, under a mutex, into a
 *    cache that is never freed (ASan counts it as reachable, not leaked).
 */
#include "cv_transcode.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Nested messages below the top-level one; deeper input is an error. */
#define CV_TC_MAX_DEPTH 32

/* Longest field path kept for messages; longer ones are truncated. */
#define CV_TC_PATH_MAX 256

/* The message type whose `json` string is written as a JSON value. */
#define CV_TC_RAW_JSON_NAME "cv.RawJson"

/* Outcomes of number parsing, mapped to "must be ..." / "out of range". */
enum cv_tc_num {
    CV_TC_NUM_OK = 0,
    CV_TC_NUM_SYNTAX,
    CV_TC_NUM_RANGE,
};

/* The dotted path of the field being converted, for error messages. */
typedef struct cv_tc_path {
    char buf[CV_TC_PATH_MAX];
    size_t len;
} cv_tc_path;

typedef struct cv_tc_ctx {
    cv_tc_path path;
    cv_error *err;
    bool null_enum_unset; /* stored records: a null enum is unset */
} cv_tc_ctx;

/* One enum's JSON names, parallel to desc->values; never freed. */
typedef struct cv_tc_enum_names {
    struct cv_tc_enum_names *next;
    const ProtobufCEnumDescriptor *desc;
    const char **names;
} cv_tc_enum_names;

static pthread_mutex_t cv_tc_enum_lock = PTHREAD_MUTEX_INITIALIZER;
static cv_tc_enum_names *cv_tc_enum_cache = NULL;

static int cv_tc_read_message(const ProtobufCMessageDescriptor *desc,
                              json_t *obj, ProtobufCMessage **out,
                              cv_tc_ctx *ctx, int depth);
static int cv_tc_write_message(const ProtobufCMessage *msg, json_t **out,
                               int depth);

/* ---- small helpers ---------------------------------------------------- */

#define CV_TC_MEMBER(type, msg, off) (*(type *)((char *)(msg) + (off)))

static char
cv_tc_ascii_lower(char c)
{
    /* Locale-independent on purpose: enum names are ASCII. */
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool
cv_tc_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

static int
cv_tc_oom(cv_error *err)
{
    return cv_error_set(err, CV_INTERNAL, "out of memory");
}

static size_t
cv_tc_path_push_name(cv_tc_path *p, const char *name)
{
    size_t old = p->len;
    int n;

    n = snprintf(p->buf + p->len, sizeof(p->buf) - p->len, "%s%s",
                 p->len > 0 ? "." : "", name);
    /* A truncated path still names the start of the field; keep it. */
    if (n < 0 || (size_t)n >= sizeof(p->buf) - p->len)
        p->len = sizeof(p->buf) - 1;
    else
        p->len += (size_t)n;
    return old;
}

static size_t
cv_tc_path_push_index(cv_tc_path *p, size_t i)
{
    size_t old = p->len;
    int n;

    n = snprintf(p->buf + p->len, sizeof(p->buf) - p->len, "[%zu]", i);
    if (n < 0 || (size_t)n >= sizeof(p->buf) - p->len)
        p->len = sizeof(p->buf) - 1;
    else
        p->len += (size_t)n;
    return old;
}

static void
cv_tc_path_pop(cv_tc_path *p, size_t old)
{
    p->len = old;
    p->buf[p->len] = '\0';
}

/* "<path> <rule>", always INVALID_ARGUMENT. */
static int
cv_tc_fail(cv_tc_ctx *ctx, const char *rule)
{
    return cv_error_set(ctx->err, CV_INVALID_ARGUMENT, "%s %s", ctx->path.buf,
                        rule);
}

/* Strict UTF-8: no overlong forms, surrogates or code points > U+10FFFF. */
static bool
cv_tc_utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;

        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/*
 * A JSON string for s. protobuf-c does not check UTF-8 on unpack, and
 * jansson refuses invalid UTF-8, so bad bytes become U+FFFD instead of
 * making the whole reply fail.
 */
static json_t *
cv_tc_json_string(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len = strlen(s);
    char *buf;
    size_t o = 0;
    json_t *j;

    if (cv_tc_utf8_valid(u, len))
        return json_stringn(s, len);
    if ((buf = malloc(len * 3 + 1)) == NULL)
        return NULL;
    for (size_t i = 0; i < len;) {
        size_t n = 1;

        /* The one valid sequence (1..4 bytes) starting here, if any. */
        while (n <= 4 && i + n <= len && !cv_tc_utf8_valid(u + i, n))
            n++;
        if (n <= 4 && i + n <= len) {
            memcpy(buf + o, s + i, n);
            o += n;
            i += n;
        } else {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    j = json_stringn(buf, o);
    free(buf);
    return j;
}

/* ---- base64 ----------------------------------------------------------- */

static const char cv_tc_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard alphabet with padding; malloc'd, NULL when out of memory. */
static char *
cv_tc_b64_encode(const uint8_t *data, size_t len)
{
    char *out = malloc((len + 2) / 3 * 4 + 1);
    size_t o = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;

        if (i + 1 < len)
            v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        out[o++] = cv_tc_b64[(v >> 18) & 0x3f];
        out[o++] = cv_tc_b64[(v >> 12) & 0x3f];
        out[o++] = i + 1 < len ? cv_tc_b64[(v >> 6) & 0x3f] : '=';
        out[o++] = i + 2 < len ? cv_tc_b64[v & 0x3f] : '=';
    }
    out[o] = '\0';
    return out;
}

static int
cv_tc_b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    /* The URL-safe alphabet too, as proto3 JSON parsers accept both. */
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/*
 * Decodes base64 (padding optional) into a malloc'd buffer; an empty input
 * gives len 0 and data NULL. Returns CV_TC_NUM_SYNTAX for bad input, -1
 * when out of memory.
 */
static int
cv_tc_b64_decode(const char *s, size_t len, ProtobufCBinaryData *out)
{
    uint8_t *data;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;

    out->len = 0;
    out->data = NULL;
    if (len % 4 == 0 && len > 0 && s[len - 1] == '=')
        len -= (len >= 2 && s[len - 2] == '=') ? 2 : 1;
    if (len % 4 == 1)
        return CV_TC_NUM_SYNTAX;
    if (len == 0)
        return CV_TC_NUM_OK;
    if ((data = malloc(len / 4 * 3 + 3)) == NULL)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v = cv_tc_b64_value(s[i]);

        if (v < 0) {
            free(data);
            return CV_TC_NUM_SYNTAX;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            data[o++] = (uint8_t)(acc >> bits);
        }
    }
    out->len = o;
    out->data = data;
    return CV_TC_NUM_OK;
}

/* ---- numbers ---------------------------------------------------------- */

static bool
cv_tc_is_64bit(ProtobufCType t)
{
    return t == PROTOBUF_C_TYPE_INT64 || t == PROTOBUF_C_TYPE_SINT64 ||
           t == PROTOBUF_C_TYPE_SFIXED64 || t == PROTOBUF_C_TYPE_UINT64 ||
           t == PROTOBUF_C_TYPE_FIXED64;
}

/* Whole string must be [-]digits; the magnitude is checked for overflow. */
static int
cv_tc_parse_dec(const char *s, size_t len, bool *neg, uint64_t *mag)
{
    size_t i = 0;

    *neg = false;
    *mag = 0;
    if (len > 0 && s[0] == '-') {
        *neg = true;
        i = 1;
    }
    if (i == len)
        return CV_TC_NUM_SYNTAX;
    for (; i < len; i++) {
        unsigned d;

        if (s[i] < '0' || s[i] > '9')
            return CV_TC_NUM_SYNTAX;
        d = (unsigned)(s[i] - '0');
        /* Keep scanning after an overflow: "12x" is still a syntax error. */
        if (*mag > (UINT64_MAX - d) / 10) {
            for (; i < len; i++)
                if (s[i] < '0' || s[i] > '9')
                    return CV_TC_NUM_SYNTAX;
            return CV_TC_NUM_RANGE;
        }
        *mag = *mag * 10 + d;
    }
    return CV_TC_NUM_OK;
}

/* A JSON integer, an integral real, or (64-bit types) a decimal string. */
static int
cv_tc_json_int(json_t *v, ProtobufCType t, bool *neg, uint64_t *mag)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);

        *neg = i < 0;
        /* -(i + 1) + 1 avoids overflowing on the most negative value. */
        *mag = *neg ? (uint64_t)(-(i + 1)) + 1 : (uint64_t)i;
        return CV_TC_NUM_OK;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);

        if (!isfinite(d) || d != floor(d))
            return CV_TC_NUM_SYNTAX;
        *neg = d < 0;
        if (*neg)
            d = -d;
        /* 2^64: anything at or above it cannot be a 64-bit magnitude. */
        if (d >= 18446744073709551616.0)
            return CV_TC_NUM_RANGE;
        *mag = (uint64_t)d;
        return CV_TC_NUM_OK;
    }
    if (json_is_string(v) && cv_tc_is_64bit(t))
        return cv_tc_parse_dec(json_string_value(v), json_string_length(v), neg,
                               mag);
    return CV_TC_NUM_SYNTAX;
}

/* Stores (neg, mag) into an integer slot of type t if it fits. */
static int
cv_tc_store_int(ProtobufCType t, bool neg, uint64_t mag, void *slot)
{
    /* A negative zero is zero; unsigned fields accept it. */
    if (mag == 0)
        neg = false;
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (mag > (neg ? (uint64_t)INT32_MAX + 1 : (uint64_t)INT32_MAX))
            return CV_TC_NUM_RANGE;
        *(int32_t *)slot =
            neg ? (int32_t)(-(int64_t)(mag - 1) - 1) : (int32_t)mag;
        return CV_TC_NUM_OK;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (neg || mag > UINT32_MAX)
            return CV_TC_NUM_RANGE;
        *(uint32_t *)slot = (uint32_t)mag;
        return CV_TC_NUM_OK;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (mag > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
            return CV_TC_NUM_RANGE;
        /* (mag - 1) fits int64 even for -2^63, so no signed overflow. */
        *(int64_t *)slot = neg ? -(int64_t)(mag - 1) - 1 : (int64_t)mag;
        return CV_TC_NUM_OK;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (neg)
            return CV_TC_NUM_RANGE;
        *(uint64_t *)slot = mag;
        return CV_TC_NUM_OK;
    default:
        return CV_TC_NUM_SYNTAX;
    }
}

/* Whole string must be a finite decimal number (no hex, inf or nan). */
static int
cv_tc_parse_double(const char *s, double *out)
{
    char *end;
    bool digit = false;

    for (const char *p = s; *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9')
            digit = true;
        else if (strchr("+-.eE", *p) == NULL)
            return CV_TC_NUM_SYNTAX;
    }
    if (!digit)
        return CV_TC_NUM_SYNTAX;
    errno = 0;
    *out = strtod(s, &end);
    if (*end != '\0' || end == s)
        return CV_TC_NUM_SYNTAX;
    if (errno == ERANGE && fabs(*out) > 1.0)
        return CV_TC_NUM_RANGE;
    return CV_TC_NUM_OK;
}

/* ---- enums ------------------------------------------------------------ */

/*
 * Writes the UPPER_SNAKE form of the enum's short name plus '_' into buf
 * (AckState -> "ACK_STATE_"). Returns its length, 0 when it does not fit.
 */
static size_t
cv_tc_enum_prefix(const ProtobufCEnumDescriptor *desc, char *buf, size_t cap)
{
    const char *n = desc->short_name;
    size_t o = 0;

    for (size_t i = 0; n[i] != '\0'; i++) {
        char c = n[i];
        bool upper = c >= 'A' && c <= 'Z';

        if (upper && i > 0) {
            char prev = n[i - 1];
            char next = n[i + 1];
            bool p_lo =
                (prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9');
            bool p_up = prev >= 'A' && prev <= 'Z';

            /* HTTPStatus -> HTTP_STATUS: break before the last capital. */
            if (p_lo || (p_up && next >= 'a' && next <= 'z')) {
                if (o + 1 >= cap)
                    return 0;
                buf[o++] = '_';
            }
        }
        if (o + 1 >= cap)
            return 0;
        buf[o++] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    if (o + 2 > cap)
        return 0;
    buf[o++] = '_';
    buf[o] = '\0';
    return o;
}

/* The value name with the enum prefix removed (still upper case). */
static const char *
cv_tc_enum_suffix(const ProtobufCEnumDescriptor *desc, const char *name)
{
    char prefix[128];
    size_t plen = cv_tc_enum_prefix(desc, prefix, sizeof(prefix));

    if (plen > 0 && strncmp(name, prefix, plen) == 0 && name[plen] != '\0')
        return name + plen;
    return name;
}

/* Value 0 and *_UNSPECIFIED mean "not set", never a client's choice. */
static bool
cv_tc_enum_accepts(const ProtobufCEnumValue *v)
{
    size_t len = strlen(v->name);
    size_t ul = strlen("UNSPECIFIED");

    if (v->value == 0)
        return false;
    if (len >= ul && strcmp(v->name + len - ul, "UNSPECIFIED") == 0 &&
        (len == ul || v->name[len - ul - 1] == '_'))
        return false;
    return true;
}

/* Finds the accepted value whose JSON name matches s[0..len) after
 * trimming, lower-casing and '-' -> '_'. Returns 0 and sets *out. */
static int
cv_tc_enum_parse(const ProtobufCEnumDescriptor *desc, const char *s, size_t len,
                 int *out)
{
    while (len > 0 && cv_tc_is_space(s[0])) {
        s++;
        len--;
    }
    while (len > 0 && cv_tc_is_space(s[len - 1]))
        len--;
    for (unsigned i = 0; i < desc->n_values; i++) {
        const ProtobufCEnumValue *v = &desc->values[i];
        const char *suffix;
        size_t k;

        if (!cv_tc_enum_accepts(v))
            continue;
        suffix = cv_tc_enum_suffix(desc, v->name);
        if (strlen(suffix) != len)
            continue;
        for (k = 0; k < len; k++) {
            char c = cv_tc_ascii_lower(s[k]);

            if (c == '-')
                c = '_';
            if (c != cv_tc_ascii_lower(suffix[k]))
                break;
        }
        if (k == len) {
            *out = v->value;
            return 0;
        }
    }
    return -1;
}

/* "<path> must be a, b, or c", listing the accepted names in order. */
static int
cv_tc_enum_fail(cv_tc_ctx *ctx, const ProtobufCEnumDescriptor *desc)
{
    char list[CV_ERROR_MSG_MAX];
    size_t o = 0;
    unsigned total = 0, seen = 0;

    for (unsigned i = 0; i < desc->n_values; i++)
        if (cv_tc_enum_accepts(&desc->values[i]))
            total++;
    if (total == 0)
        return cv_tc_fail(ctx, "has no accepted values");
    list[0] = '\0';
    for (unsigned i = 0; i < desc->n_values; i++) {
        const ProtobufCEnumValue *v = &desc->values[i];
        const char *sep;
        const char *suffix;

        if (!cv_tc_enum_accepts(v))
            continue;
        seen++;
        if (seen == 1)
            sep = "";
        else if (seen < total)
            sep = ", ";
        else
            sep = total == 2 ? " or " : ", or ";
        for (const char *p = sep; *p != '\0' && o + 1 < sizeof(list); p++)
            list[o++] = *p;
        suffix = cv_tc_enum_suffix(desc, v->name);
        for (const char *p = suffix; *p != '\0' && o + 1 < sizeof(list); p++)
            list[o++] = cv_tc_ascii_lower(*p);
        list[o] = '\0';
    }
    return cv_error_set(ctx->err, CV_INVALID_ARGUMENT, "%s must be %s",
                        ctx->path.buf, list);
}

/* The cached JSON names of desc, built on first use; NULL when out of
 * memory. One allocation per enum holds the table and the strings. */
static const cv_tc_enum_names *
cv_tc_enum_table(const ProtobufCEnumDescriptor *desc)
{
    cv_tc_enum_names *e;
    size_t size;
    char *p;

    pthread_mutex_lock(&cv_tc_enum_lock);
    for (e = cv_tc_enum_cache; e != NULL; e = e->next)
        if (e->desc == desc)
            goto done;
    size = sizeof(*e) + desc->n_values * sizeof(char *);
    for (unsigned i = 0; i < desc->n_values; i++)
        size += strlen(cv_tc_enum_suffix(desc, desc->values[i].name)) + 1;
    if ((e = malloc(size)) == NULL)
        goto done;
    e->desc = desc;
    e->names = (const char **)(e + 1);
    p = (char *)(e->names + desc->n_values);
    for (unsigned i = 0; i < desc->n_values; i++) {
        const char *s = cv_tc_enum_suffix(desc, desc->values[i].name);

        e->names[i] = p;
        while (*s != '\0')
            *p++ = cv_tc_ascii_lower(*s++);
        *p++ = '\0';
    }
    e->next = cv_tc_enum_cache;
    cv_tc_enum_cache = e;
done:
    pthread_mutex_unlock(&cv_tc_enum_lock);
    return e;
}

const char *
cv_enum_json_name(const ProtobufCEnumDescriptor *desc, int value)
{
    const cv_tc_enum_names *t;
    const ProtobufCEnumValue *v;

    if (desc == NULL)
        return NULL;
    if ((v = protobuf_c_enum_descriptor_get_value(desc, value)) == NULL)
        return NULL;
    if ((t = cv_tc_enum_table(desc)) == NULL)
        return NULL;
    return t->names[v - desc->values];
}

/* ---- field storage ---------------------------------------------------- */

/* Size of one element of a repeated field of type t. */
static size_t
cv_tc_type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return sizeof(int32_t);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof(int64_t);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        /* protobuf-c forces every generated enum to int size. */
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

static bool
cv_tc_is_oneof(const ProtobufCFieldDescriptor *f)
{
    return (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
}

/* Strings and messages mark presence by their pointer, not a has_ flag. */
static bool
cv_tc_has_flag(const ProtobufCFieldDescriptor *f)
{
    return f->label == PROTOBUF_C_LABEL_OPTIONAL && !cv_tc_is_oneof(f) &&
           f->type != PROTOBUF_C_TYPE_STRING &&
           f->type != PROTOBUF_C_TYPE_MESSAGE;
}

static bool
cv_tc_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
    if (cv_tc_is_oneof(f))
        return CV_TC_MEMBER(uint32_t, msg, f->quantifier_offset) == f->id;
    if (f->label != PROTOBUF_C_LABEL_OPTIONAL)
        return true;
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        const char *s = CV_TC_MEMBER(const char *, msg, f->offset);

        /* Pointing at the default means "not on the wire". */
        return s != NULL && s != (const char *)f->default_value;
    }
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        return CV_TC_MEMBER(const ProtobufCMessage *, msg, f->offset) != NULL;
    return CV_TC_MEMBER(protobuf_c_boolean, msg, f->quantifier_offset) != 0;
}

/* The `json` field when desc is cv.RawJson, otherwise NULL. */
static const ProtobufCFieldDescriptor *
cv_tc_raw_json_field(const ProtobufCMessageDescriptor *desc)
{
    const ProtobufCFieldDescriptor *f;

    if (desc == NULL || strcmp(desc->name, CV_TC_RAW_JSON_NAME) != 0)
        return NULL;
    f = protobuf_c_message_descriptor_get_field_by_name(desc, "json");
    if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING ||
        f->label == PROTOBUF_C_LABEL_REPEATED || cv_tc_is_oneof(f))
        return NULL;
    return f;
}

/* A oneof member may be set only while no other member of it is. */
static int
cv_tc_oneof_check(const ProtobufCMessage *msg,
                  const ProtobufCFieldDescriptor *f, cv_tc_ctx *ctx)
{
    const ProtobufCFieldDescriptor *other;
    uint32_t which;

    if (!cv_tc_is_oneof(f))
        return 0;
    which = CV_TC_MEMBER(uint32_t, msg, f->quantifier_offset);
    if (which == 0 || which == f->id)
        return 0;
    other = protobuf_c_message_descriptor_get_field(msg->descriptor, which);
    return cv_error_set(ctx->err, CV_INVALID_ARGUMENT,
                        "%s cannot be combined with %s", ctx->path.buf,
                        other != NULL ? other->name : "another field");
}

/* Marks a just-stored singular value as present. */
static void
cv_tc_mark_present(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
    if (cv_tc_is_oneof(f))
        CV_TC_MEMBER(uint32_t, msg, f->quantifier_offset) = f->id;
    else if (cv_tc_has_flag(f))
        CV_TC_MEMBER(protobuf_c_boolean, msg, f->quantifier_offset) = 1;
}

/* ---- JSON -> message -------------------------------------------------- */

static int
cv_tc_read_string(json_t *v, cv_tc_ctx *ctx, const char **s, size_t *len)
{
    if (!json_is_string(v))
        return cv_tc_fail(ctx, "must be a string");
    *s = json_string_value(v);
    *len = json_string_length(v);
    /* jansson can hold "\u0000"; a C string cannot. */
    if (strlen(*s) != *len)
        return cv_tc_fail(ctx, "must not contain NUL characters");
    if (!cv_tc_utf8_valid((const unsigned char *)*s, *len))
        return cv_tc_fail(ctx, "must be valid UTF-8");
    return 0;
}

/* Stores any JSON value as a RawJson message in *slot. */
static int
cv_tc_read_raw_json(const ProtobufCFieldDescriptor *f, json_t *v, void *slot,
                    cv_tc_ctx *ctx)
{
    const ProtobufCFieldDescriptor *jf = cv_tc_raw_json_field(f->descriptor);
    ProtobufCMessage *raw;
    char *text;

    if ((raw = cv_message_new(f->descriptor)) == NULL)
        return cv_tc_oom(ctx->err);
    /* json_dumps allocates with malloc unless someone swapped jansson's
     * allocator, which CAVRA does not do. */
    if ((text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL) {
        protobuf_c_message_free_unpacked(raw, NULL);
        return cv_tc_oom(ctx->err);
    }
    CV_TC_MEMBER(char *, raw, jf->offset) = text;
    text = NULL;
    *(ProtobufCMessage **)slot = raw;
    return 0;
}

/* Reads one value (a singular field or one array element) into slot. */
static int
cv_tc_read_value(const ProtobufCFieldDescriptor *f, json_t *v, void *slot,
                 cv_tc_ctx *ctx, int depth)
{
    const char *s = NULL;
    size_t len = 0;
    bool neg;
    uint64_t mag;
    double d;
    int rc;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        rc = cv_tc_json_int(v, f->type, &neg, &mag);
        if (rc == CV_TC_NUM_OK)
            rc = cv_tc_store_int(f->type, neg, mag, slot);
        if (rc == CV_TC_NUM_SYNTAX)
            return cv_tc_fail(ctx, "must be an integer");
        if (rc == CV_TC_NUM_RANGE)
            return cv_tc_fail(ctx, "is out of range");
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if (!json_is_number(v))
            return cv_tc_fail(ctx, "must be a number");
        d = json_number_value(v);
        if (fabs(d) > FLT_MAX)
            return cv_tc_fail(ctx, "is out of range");
        *(float *)slot = (float)d;
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (!json_is_number(v))
            return cv_tc_fail(ctx, "must be a number");
        *(double *)slot = json_number_value(v);
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            return cv_tc_fail(ctx, "must be a boolean");
        *(protobuf_c_boolean *)slot = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        if (!json_is_string(v) ||
            cv_tc_enum_parse(f->descriptor, json_string_value(v),
                             json_string_length(v), (int *)slot) != 0)
            return cv_tc_enum_fail(ctx, f->descriptor);
        return 0;
    case PROTOBUF_C_TYPE_STRING: {
        char *copy;

        if ((rc = cv_tc_read_string(v, ctx, &s, &len)) != 0)
            return rc;
        if ((copy = malloc(len + 1)) == NULL)
            return cv_tc_oom(ctx->err);
        memcpy(copy, s, len + 1);
        *(char **)slot = copy;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES:
        if (!json_is_string(v))
            return cv_tc_fail(ctx, "must be a string");
        rc = cv_tc_b64_decode(json_string_value(v), json_string_length(v),
                              (ProtobufCBinaryData *)slot);
        if (rc < 0)
            return cv_tc_oom(ctx->err);
        if (rc != CV_TC_NUM_OK)
            return cv_tc_fail(ctx, "must be base64");
        return 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        if (cv_tc_raw_json_field(f->descriptor) != NULL)
            return cv_tc_read_raw_json(f, v, slot, ctx);
        if (!json_is_object(v))
            return cv_tc_fail(ctx, "must be an object");
        if (depth + 1 > CV_TC_MAX_DEPTH)
            return cv_tc_fail(ctx, "nests too deeply");
        return cv_tc_read_message(f->descriptor, v, (ProtobufCMessage **)slot,
                                  ctx, depth + 1);
    }
    return cv_error_set(ctx->err, CV_INTERNAL, "%s has an unknown type",
                        ctx->path.buf);
}

static int
cv_tc_read_field(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                 json_t *v, cv_tc_ctx *ctx, int depth)
{
    size_t size, n;
    char *arr;
    int rc;

    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
        if ((rc = cv_tc_oneof_check(msg, f, ctx)) != 0)
            return rc;
        rc = cv_tc_read_value(f, v, (char *)msg + f->offset, ctx, depth);
        if (rc == 0)
            cv_tc_mark_present(msg, f);
        return rc;
    }
    if (!json_is_array(v))
        return cv_tc_fail(ctx, "must be an array");
    if ((n = json_array_size(v)) == 0)
        return 0;
    size = cv_tc_type_size(f->type);
    if ((arr = calloc(n, size)) == NULL)
        return cv_tc_oom(ctx->err);
    /* Attach first so an error below frees the array with the message. */
    CV_TC_MEMBER(void *, msg, f->offset) = arr;
    CV_TC_MEMBER(size_t, msg, f->quantifier_offset) = n;
    for (size_t i = 0; i < n; i++) {
        size_t old = cv_tc_path_push_index(&ctx->path, i);

        rc = cv_tc_read_value(f, json_array_get(v, i), arr + i * size, ctx,
                              depth);
        cv_tc_path_pop(&ctx->path, old);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int
cv_tc_read_message(const ProtobufCMessageDescriptor *desc, json_t *obj,
                   ProtobufCMessage **out, cv_tc_ctx *ctx, int depth)
{
    ProtobufCMessage *msg;
    int rc = 0;

    if ((msg = cv_message_new(desc)) == NULL)
        return cv_tc_oom(ctx->err);
    for (unsigned i = 0; i < desc->n_fields && rc == 0; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        json_t *v = json_object_get(obj, f->name);
        size_t old = cv_tc_path_push_name(&ctx->path, f->name);

        /* null is "not given", except for enums whose error lists the
         * accepted names. */
        if (v == NULL || (json_is_null(v) && (f->type != PROTOBUF_C_TYPE_ENUM ||
                                              ctx->null_enum_unset))) {
            if (f->label == PROTOBUF_C_LABEL_REQUIRED)
                rc = cv_tc_fail(ctx, "is required");
        } else {
            rc = cv_tc_read_field(msg, f, v, ctx, depth);
        }
        cv_tc_path_pop(&ctx->path, old);
    }
    if (rc != 0) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return rc;
    }
    *out = msg;
    return 0;
}

ProtobufCMessage *
cv_message_new(const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *msg;

    if (desc == NULL || (msg = calloc(1, desc->sizeof_message)) == NULL)
        return NULL;
    desc->message_init(msg);
    return msg;
}

int
cv_json_to_message(const ProtobufCMessageDescriptor *desc, json_t *json,
                   ProtobufCMessage **out, cv_error *err)
{
    cv_tc_ctx ctx;

    if (out != NULL)
        *out = NULL;
    if (desc == NULL || out == NULL)
        return cv_error_set(err, CV_INTERNAL,
                            "transcoder called without a message type");
    if (!json_is_object(json))
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "request body must be a JSON object");
    ctx.path.buf[0] = '\0';
    ctx.path.len = 0;
    ctx.err = err;
    ctx.null_enum_unset = false;
    return cv_tc_read_message(desc, json, out, &ctx, 0);
}

int
cv_json_record_to_message(const ProtobufCMessageDescriptor *desc,
                          const char *text, ProtobufCMessage **out,
                          cv_error *err)
{
    json_t *json;
    cv_tc_ctx ctx;
    int rc;

    *out = NULL;
    if (text == NULL || (json = json_loads(text, 0, NULL)) == NULL)
        return cv_error_set(err, CV_DATA_LOSS, "stored record is not JSON");
    if (!json_is_object(json)) {
        json_decref(json);
        return cv_error_set(err, CV_DATA_LOSS,
                            "stored record is not a JSON object");
    }
    ctx.path.buf[0] = '\0';
    ctx.path.len = 0;
    ctx.err = err;
    ctx.null_enum_unset = true;
    rc = cv_tc_read_message(desc, json, out, &ctx, 0);
    json_decref(json);
    return rc;
}

int
cv_json_text_to_message(const ProtobufCMessageDescriptor *desc,
                        const char *text, size_t len, ProtobufCMessage **out,
                        cv_error *err)
{
    json_error_t jerr;
    json_t *json;
    size_t i = 0;
    int rc;

    if (out != NULL)
        *out = NULL;
    if (text == NULL)
        len = 0;
    /* A body of only white space is as empty as no body at all. */
    while (i < len && cv_tc_is_space(text[i]))
        i++;
    if (i == len)
        json = json_object();
    else
        json = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
    if (json == NULL) {
        if (i == len || json_error_code(&jerr) == json_error_out_of_memory)
            return cv_tc_oom(err);
        /* jerr.text quotes the input near the error; never echo it. */
        return cv_error_set(err, CV_INVALID_ARGUMENT,
                            "request body is not valid JSON: line %d column %d",
                            jerr.line, jerr.column);
    }
    rc = cv_json_to_message(desc, json, out, err);
    json_decref(json);
    return rc;
}

/* ---- message -> JSON -------------------------------------------------- */

/* A float as the double of its shortest decimal form, so 0.1f is written
 * as the double 0.1 and not as 0.100000001490116 (its exact value). */
static json_t *
cv_tc_json_float(float f)
{
    char buf[32];

    if (!isfinite(f))
        return json_null();
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f)
            return json_real(strtod(buf, NULL));
    }
    return json_real((double)f);
}

static json_t *
cv_tc_json_uint64(uint64_t u)
{
    char buf[24];

    if (u <= (uint64_t)INT64_MAX)
        return json_integer((json_int_t)u);
    /* jansson integers are signed 64-bit; beyond that only text is exact. */
    snprintf(buf, sizeof(buf), "%" PRIu64, u);
    return json_string(buf);
}

static json_t *
cv_tc_write_raw_json(const ProtobufCMessage *raw)
{
    const ProtobufCFieldDescriptor *jf;
    const char *text;
    json_t *v;

    jf = cv_tc_raw_json_field(raw->descriptor);
    if (!cv_tc_present(raw, jf))
        return json_null();
    text = CV_TC_MEMBER(const char *, raw, jf->offset);
    /* Unparsable stored text is written as null rather than failing the
     * whole reply. */
    v = json_loads(text, JSON_DECODE_ANY, NULL);
    return v != NULL ? v : json_null();
}

/* Writes one value (a singular field or one array element); -1 when out
 * of memory. */
static int
cv_tc_write_value(const ProtobufCFieldDescriptor *f, const void *slot,
                  json_t **out, int depth)
{
    json_t *v = NULL;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        v = json_integer(*(const int32_t *)slot);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        v = json_integer(*(const uint32_t *)slot);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        v = json_integer(*(const int64_t *)slot);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        v = cv_tc_json_uint64(*(const uint64_t *)slot);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        v = cv_tc_json_float(*(const float *)slot);
        break;
    case PROTOBUF_C_TYPE_DOUBLE: {
        double d = *(const double *)slot;

        /* JSON has no NaN or infinity. */
        v = isfinite(d) ? json_real(d) : json_null();
        break;
    }
    case PROTOBUF_C_TYPE_BOOL:
        v = json_boolean(*(const protobuf_c_boolean *)slot);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev;
        const cv_tc_enum_names *t;

        ev = protobuf_c_enum_descriptor_get_value(f->descriptor,
                                                  *(const int *)slot);
        if (ev == NULL) {
            v = json_null();
            break;
        }
        if ((t = cv_tc_enum_table(f->descriptor)) == NULL)
            return -1;
        v = json_string(t->names[ev - t->desc->values]);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)slot;

        v = s != NULL ? cv_tc_json_string(s) : json_null();
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = slot;
        char *text;

        if ((text = cv_tc_b64_encode(b->data, b->len)) == NULL)
            return -1;
        v = json_string(text);
        free(text);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)slot;

        if (sub == NULL)
            v = json_null();
        else if (cv_tc_raw_json_field(f->descriptor) != NULL)
            v = cv_tc_write_raw_json(sub);
        else if (depth + 1 > CV_TC_MAX_DEPTH)
            /* Only a recursive type gets here; cut it rather than fail. */
            v = json_null();
        else if (cv_tc_write_message(sub, &v, depth + 1) != 0)
            return -1;
        break;
    }
    }
    if (v == NULL)
        return -1;
    *out = v;
    return 0;
}

static int
cv_tc_write_field(const ProtobufCMessage *msg,
                  const ProtobufCFieldDescriptor *f, json_t **out, int depth)
{
    const char *arr;
    size_t n, size;
    json_t *a, *v;

    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
        if (!cv_tc_present(msg, f)) {
            *out = json_null();
            return 0;
        }
        return cv_tc_write_value(f, (const char *)msg + f->offset, out, depth);
    }
    if ((a = json_array()) == NULL)
        return -1;
    arr = CV_TC_MEMBER(const char *, msg, f->offset);
    n = CV_TC_MEMBER(size_t, msg, f->quantifier_offset);
    size = cv_tc_type_size(f->type);
    for (size_t i = 0; i < n && arr != NULL; i++) {
        if (cv_tc_write_value(f, arr + i * size, &v, depth) != 0 ||
            json_array_append_new(a, v) != 0) {
            json_decref(a);
            return -1;
        }
    }
    *out = a;
    return 0;
}

static int
cv_tc_write_message(const ProtobufCMessage *msg, json_t **out, int depth)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    json_t *obj, *v;

    if ((obj = json_object()) == NULL)
        return -1;
    /* fields[] is in tag order and jansson keeps insertion order. */
    for (unsigned i = 0; i < desc->n_fields; i++) {
        if (cv_tc_write_field(msg, &desc->fields[i], &v, depth) != 0 ||
            json_object_set_new(obj, desc->fields[i].name, v) != 0) {
            json_decref(obj);
            return -1;
        }
    }
    *out = obj;
    return 0;
}

json_t *
cv_message_to_json(const ProtobufCMessage *msg)
{
    json_t *obj;

    if (msg == NULL || cv_tc_write_message(msg, &obj, 0) != 0)
        return NULL;
    return obj;
}

char *
cv_message_to_json_text(const ProtobufCMessage *msg, size_t flags)
{
    json_t *obj;
    char *text;

    if ((obj = cv_message_to_json(msg)) == NULL)
        return NULL;
    text = json_dumps(obj, flags);
    json_decref(obj);
    return text;
}

/* ---- text parameters -------------------------------------------------- */

int
cv_message_set_field_text(ProtobufCMessage *msg, const char *name,
                          const char *text, cv_error *err)
{
    const ProtobufCFieldDescriptor *f = NULL;
    cv_tc_ctx ctx;
    void *slot;
    bool neg;
    uint64_t mag;
    double d;
    int rc;

    if (msg != NULL && name != NULL)
        f = protobuf_c_message_descriptor_get_field_by_name(msg->descriptor,
                                                            name);
    if (f == NULL || f->label == PROTOBUF_C_LABEL_REPEATED ||
        f->type == PROTOBUF_C_TYPE_MESSAGE)
        return cv_error_set(err, CV_INTERNAL, "%s has no scalar field %s",
                            msg != NULL ? msg->descriptor->name : "(null)",
                            name != NULL ? name : "(null)");
    if (text == NULL)
        text = "";
    ctx.err = err;
    ctx.path.len = 0;
    ctx.path.buf[0] = '\0';
    cv_tc_path_push_name(&ctx.path, name);
    if ((rc = cv_tc_oneof_check(msg, f, &ctx)) != 0)
        return rc;
    slot = (char *)msg + f->offset;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        rc = cv_tc_parse_dec(text, strlen(text), &neg, &mag);
        if (rc == CV_TC_NUM_OK)
            rc = cv_tc_store_int(f->type, neg, mag, slot);
        if (rc == CV_TC_NUM_SYNTAX)
            return cv_tc_fail(&ctx, "must be an integer");
        if (rc == CV_TC_NUM_RANGE)
            return cv_tc_fail(&ctx, "is out of range");
        break;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        rc = cv_tc_parse_double(text, &d);
        if (rc == CV_TC_NUM_OK && f->type == PROTOBUF_C_TYPE_FLOAT &&
            fabs(d) > FLT_MAX)
            rc = CV_TC_NUM_RANGE;
        if (rc == CV_TC_NUM_SYNTAX)
            return cv_tc_fail(&ctx, "must be a number");
        if (rc == CV_TC_NUM_RANGE)
            return cv_tc_fail(&ctx, "is out of range");
        if (f->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *)slot = (float)d;
        else
            *(double *)slot = d;
        break;
    case PROTOBUF_C_TYPE_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0)
            *(protobuf_c_boolean *)slot = 1;
        else if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0)
            *(protobuf_c_boolean *)slot = 0;
        else
            return cv_tc_fail(&ctx, "must be a boolean");
        break;
    case PROTOBUF_C_TYPE_ENUM:
        if (cv_tc_enum_parse(f->descriptor, text, strlen(text), (int *)slot) !=
            0)
            return cv_tc_enum_fail(&ctx, f->descriptor);
        break;
    case PROTOBUF_C_TYPE_STRING: {
        size_t len = strlen(text);
        char *copy, *old;

        if (!cv_tc_utf8_valid((const unsigned char *)text, len))
            return cv_tc_fail(&ctx, "must be valid UTF-8");
        if ((copy = malloc(len + 1)) == NULL)
            return cv_tc_oom(err);
        memcpy(copy, text, len + 1);
        /* Replace, freeing the old value the way free_unpacked would; an
         * unset oneof member's storage belongs to another member. */
        old = *(char **)slot;
        if (cv_tc_present(msg, f) && old != NULL &&
            old != (const char *)f->default_value)
            free(old);
        *(char **)slot = copy;
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = slot;
        ProtobufCBinaryData nb;
        const ProtobufCBinaryData *def = f->default_value;

        rc = cv_tc_b64_decode(text, strlen(text), &nb);
        if (rc < 0)
            return cv_tc_oom(err);
        if (rc != CV_TC_NUM_OK)
            return cv_tc_fail(&ctx, "must be base64");
        if ((!cv_tc_is_oneof(f) || cv_tc_present(msg, f)) && b->data != NULL &&
            (def == NULL || def->data != b->data))
            free(b->data);
        *b = nb;
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        break;
    }
    cv_tc_mark_present(msg, f);
    return 0;
}

int
cv_json_is_integer_type(ProtobufCType t)
{
    /* protobuf-c numbers its ten integer types first: INT32 (0) through
     * FIXED64 (9). unit.transcode checks every type against this. */
    return t <= PROTOBUF_C_TYPE_FIXED64;
}
