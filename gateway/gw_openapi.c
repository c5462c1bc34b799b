/*
 * gw_openapi.c -- builds the OpenAPI document from the method registry
 * (lib/cv_method.h, through its REST view gw_routes) and the request/reply
 * descriptors: one operation per registry entry with a REST binding, its
 * roles, transaction mode, key and success status all read from there. JSON
 * naming follows cv_transcode.h: proto field names, enums as lower-case names,
 * RawJson as any value, int64 as integers.
 */
#include "gw_openapi.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cv_transcode.h"
#include "gw_auth.h"
#include "gw_routes.h"
#include "rpc.pb-c.h"

static json_t *gw_openapi_message_ref(json_t *schemas,
                                      const ProtobufCMessageDescriptor *desc);

static json_t *
gw_openapi_enum(const ProtobufCEnumDescriptor *desc)
{
    json_t *values = json_array();

    for (unsigned i = 0; i < desc->n_values; i++) {
        const char *name = cv_enum_json_name(desc, desc->values[i].value);

        if (desc->values[i].value != 0 && name != NULL)
            json_array_append_new(values, json_string(name));
    }
    return json_pack("{s:s, s:o, s:b}", "type", "string", "enum", values,
                     "nullable", 1);
}

/* The schema of one field's single value. */
static json_t *
gw_openapi_scalar(json_t *schemas, const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_pack("{s:s, s:s}", "type", "integer", "format", "int32");
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return json_pack("{s:s, s:s}", "type", "integer", "format", "int64");
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_pack("{s:s}", "type", "number");
    case PROTOBUF_C_TYPE_BOOL:
        return json_pack("{s:s}", "type", "boolean");
    case PROTOBUF_C_TYPE_ENUM:
        return gw_openapi_enum(f->descriptor);
    case PROTOBUF_C_TYPE_STRING:
        return json_pack("{s:s}", "type", "string");
    case PROTOBUF_C_TYPE_BYTES:
        return json_pack("{s:s, s:s}", "type", "string", "format", "byte");
    case PROTOBUF_C_TYPE_MESSAGE:
        if (f->descriptor == &cv__raw_json__descriptor)
            return json_pack("{s:s}", "description", "any JSON value");
        return gw_openapi_message_ref(schemas, f->descriptor);
    default:
        return json_object();
    }
}

/* Adds the message's schema to schemas (once) and returns a $ref to it. */
static json_t *
gw_openapi_message_ref(json_t *schemas, const ProtobufCMessageDescriptor *desc)
{
    char ref[256];

    snprintf(ref, sizeof(ref), "#/components/schemas/%s", desc->short_name);
    if (json_object_get(schemas, desc->short_name) == NULL) {
        json_t *props = json_object();

        /* Placeholder first: recursive messages terminate. */
        json_object_set_new(schemas, desc->short_name, json_object());
        for (unsigned i = 0; i < desc->n_fields; i++) {
            const ProtobufCFieldDescriptor *f = &desc->fields[i];
            json_t *schema = gw_openapi_scalar(schemas, f);

            if (f->label == PROTOBUF_C_LABEL_REPEATED)
                schema =
                    json_pack("{s:s, s:o}", "type", "array", "items", schema);
            json_object_set_new(props, f->name, schema);
        }
        json_object_set_new(
            schemas, desc->short_name,
            json_pack("{s:s, s:o}", "type", "object", "properties", props));
    }
    return json_pack("{s:s}", "$ref", ref);
}

static json_t *
gw_openapi_json_content(json_t *schema)
{
    return json_pack("{s:{s:o}}", "application/json", "schema", schema);
}

static json_t *
gw_openapi_response(const char *description, json_t *schema)
{
    if (schema == NULL)
        return json_pack("{s:s}", "description", description);
    return json_pack("{s:s, s:o}", "description", description, "content",
                     gw_openapi_json_content(schema));
}

static bool
gw_openapi_is_path_param(const char *pattern, const char *name)
{
    char token[64];

    snprintf(token, sizeof(token), "{%s}", name);
    if (strstr(pattern, token) != NULL)
        return true;
    snprintf(token, sizeof(token), "{%s*}", name); /* the rest of the path */
    return strstr(pattern, token) != NULL;
}

/* The names of the CV_ROLE_* bits in roles, as a JSON array. */
static json_t *
gw_openapi_roles(unsigned int roles)
{
    json_t *names = json_array();

    for (unsigned int bit = 1; bit <= CV_ROLE_ANY; bit <<= 1)
        if ((roles & bit) != 0 && cv_role_name(bit) != NULL)
            json_array_append_new(names, json_string(cv_role_name(bit)));
    return names;
}

static json_t *
gw_openapi_operation(json_t *schemas, const gw_route *route)
{
    json_t *op = json_object(), *params = json_array(), *responses;
    char roles[160], desc[384];
    const cv_method_info *m = route->method;
    const ProtobufCMessageDescriptor *req = route->request;
    json_t *error = json_pack("{s:s}", "$ref", "#/components/schemas/Error");

    gw_auth_roles_text(route->roles & ~CV_ROLE_ADMIN, roles, sizeof(roles));
    snprintf(desc, sizeof(desc),
             "RPC %s (service %s, %s transaction). Roles (with a token "
             "file): %s%sadmin.%s",
             route->rpc, cv_service_name(m->service), cv_tx_mode_name(m->tx),
             roles, roles[0] != '\0' ? " or " : "",
             m->keyed ? " Takes an Idempotency-Key." : "");
    json_object_set_new(op, "summary", json_string(route->summary));
    json_object_set_new(op, "description", json_string(desc));
    json_object_set_new(op, "operationId", json_string(route->rpc));
    /* The registry row itself, for tools that generate clients. */
    json_object_set_new(
        op, "x-cavra-rpc",
        json_pack("{s:s, s:s, s:s, s:b, s:b, s:o, s:s, s:s}", "method",
                  route->rpc, "service", cv_service_name(m->service),
                  "transaction", cv_tx_mode_name(m->tx), "stores_record",
                  m->stores_record, "keyed", m->keyed, "roles",
                  gw_openapi_roles(route->roles | CV_ROLE_ADMIN), "request",
                  req->name, "reply", route->reply->name));
    if (route->timeout_ms > 0)
        json_object_set_new(json_object_get(op, "x-cavra-rpc"), "timeout_ms",
                            json_integer(route->timeout_ms));
    for (unsigned i = 0; i < req->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &req->fields[i];
        bool in_path = gw_openapi_is_path_param(route->pattern, f->name);

        if (!in_path && strcmp(route->http_method, "GET") != 0)
            continue;
        json_array_append_new(
            params, json_pack("{s:s, s:s, s:b, s:o}", "name", f->name, "in",
                              in_path ? "path" : "query", "required", in_path,
                              "schema", gw_openapi_scalar(schemas, f)));
    }
    if (m->keyed)
        json_array_append_new(
            params,
            json_pack(
                "{s:s, s:s, s:b, s:s, s:{s:s, s:i, s:i}}", "name",
                "Idempotency-Key", "in", "header", "required", 0, "description",
                "Same key and body replays the stored response (200, "
                "Idempotent-Replayed: true); another body is 409.",
                "schema", "type", "string", "minLength", 1, "maxLength", 255));
    if (strcmp(route->http_method, "POST") == 0)
        json_object_set_new(
            op, "requestBody",
            json_pack(
                "{s:b, s:o}", "required", 1, "content",
                gw_openapi_json_content(gw_openapi_message_ref(schemas, req))));
    json_object_set_new(op, "parameters", params);
    /* The gateway checks the bearer token of every registry route when it
     * has a token file; a loopback sandbox without one checks none (the
     * scheme's description says so). */
    json_object_set_new(op, "security", json_pack("[{s:[]}]", "bearer"));
    responses = json_object();
    if (cv_method_raw_reply(m))
        /* Served as is (a note, a key, a proof bundle, tile bytes): the
         * media type is the handler's. */
        json_object_set_new(
            responses, "200",
            json_pack("{s:s, s:{s:{s:{s:s, s:s}}}}", "description",
                      "OK, served as is: text/plain (checkpoint, key), "
                      "application/json (proofs) or "
                      "application/octet-stream (tiles)",
                      "content", "*/*", "schema", "type", "string", "format",
                      "binary"));
    else
        json_object_set_new(
            responses, route->status == 201 ? "201" : "200",
            gw_openapi_response(route->status == 201 ? "Stored" : "OK",
                                gw_openapi_message_ref(schemas, route->reply)));
    if (route->status == 201)
        json_object_set_new(
            responses, "200",
            gw_openapi_response("Idempotent replay or existing record",
                                gw_openapi_message_ref(schemas, route->reply)));
    json_object_set_new(
        responses, "400",
        gw_openapi_response("Invalid input", json_incref(error)));
    json_object_set_new(
        responses, "401",
        gw_openapi_response("No valid bearer token", json_incref(error)));
    json_object_set_new(
        responses, "403",
        gw_openapi_response("Role missing", json_incref(error)));
    json_object_set_new(responses, "404",
                        gw_openapi_response("Not found", json_incref(error)));
    json_object_set_new(responses, "405",
                        gw_openapi_response("Method not allowed (see Allow)",
                                            json_incref(error)));
    if (m->keyed)
        json_object_set_new(responses, "409",
                            gw_openapi_response("Idempotency-Key conflict",
                                                json_incref(error)));
    if (strcmp(route->http_method, "POST") == 0) {
        json_object_set_new(
            responses, "413",
            gw_openapi_response("Body over 64 KiB", json_incref(error)));
        json_object_set_new(
            responses, "415",
            gw_openapi_response("Not application/json", json_incref(error)));
    }
    json_object_set_new(
        responses, "421",
        gw_openapi_response("Host is not one the gateway serves",
                            json_incref(error)));
    json_object_set_new(
        responses, "429",
        gw_openapi_response("Too many requests or a cap reached (see "
                            "Retry-After when present)",
                            json_incref(error)));
    json_object_set_new(
        responses, "503",
        gw_openapi_response("A dependency is down", json_incref(error)));
    json_object_set_new(
        responses, "504",
        gw_openapi_response("The service or the database took too long",
                            json_incref(error)));
    json_object_set_new(op, "responses", responses);
    json_decref(error);
    return op;
}

/* A route of the gateway itself (no RPC, no token): status 200 with
 * type, and the 4xx it can answer. */
static void
gw_openapi_builtin(json_t *paths, const char *path, const char *id,
                   const char *summary, const char *type, int probe)
{
    json_t *content = json_pack("{s:{}}", type);
    json_t *responses = json_pack("{s:{s:s, s:o}}", "200", "description", "OK",
                                  "content", content);
    json_t *error = json_pack("{s:s}", "$ref", "#/components/schemas/Error");

    /* Probes skip the Host check but refuse other methods; the rest check
     * Host (DNS rebinding) like every route. */
    if (probe)
        json_object_set_new(responses, "405",
                            gw_openapi_response("Method not allowed (GET only)",
                                                json_incref(error)));
    else
        json_object_set_new(
            responses, "421",
            gw_openapi_response("Host is not one the gateway serves",
                                json_incref(error)));
    if (strcmp(path, "/readyz") == 0)
        json_object_set_new(
            responses, "503",
            gw_openapi_response("The database or a service does not answer",
                                NULL));
    json_decref(error);
    json_object_set_new(paths, path,
                        json_pack("{s:{s:s, s:s, s:[], s:o}}", "get", "summary",
                                  summary, "operationId", id, "security",
                                  "responses", responses));
}

json_t *
gw_openapi_document(void)
{
    json_t *doc = json_object(), *paths = json_object(),
           *schemas = json_object();

    json_object_set_new(doc, "openapi", json_string("3.0.3"));
    json_object_set_new(
        doc, "info",
        json_pack("{s:s, s:s, s:s}", "title", "CAVRA Recovery", "version",
                  "1.0.0", "description",
                  "Recovery escalation governance: acknowledgements, retry "
                  "plans, scheduled executive reports and one append-only "
                  "evidence stream. Reference: docs/api.md and "
                  "docs/reference/rest.md in the project."));
    /* "/": the gateway that serves this document; the second is where
     * `make run` listens. */
    json_object_set_new(doc, "servers",
                        json_pack("[{s:s, s:s}, {s:s, s:s}]", "url", "/",
                                  "description",
                                  "The gateway that serves this document",
                                  "url", "http://127.0.0.1:8000", "description",
                                  "make run (local sandbox)"));
    for (size_t i = 0; i < gw_route_count; i++) {
        const gw_route *route = &gw_routes[i];
        char key[256], method[8];
        json_t *item;
        size_t j, k = 0;

        /* OpenAPI templates have no `{name*}`: shown as `{name}`. */
        for (j = 0; route->pattern[j] != '\0' && k + 1 < sizeof(key); j++)
            if (!(route->pattern[j] == '*' && route->pattern[j + 1] == '}'))
                key[k++] = route->pattern[j];
        key[k] = '\0';
        if ((item = json_object_get(paths, key)) == NULL) {
            item = json_object();
            json_object_set_new(paths, key, item);
        }
        for (j = 0; route->http_method[j] != '\0' && j + 1 < sizeof(method);
             j++)
            method[j] = (char)tolower((unsigned char)route->http_method[j]);
        method[j] = '\0';
        json_object_set_new(item, method, gw_openapi_operation(schemas, route));
    }
    gw_openapi_builtin(paths, "/healthz", "gateway.Health",
                       "The gateway process is up", "application/json", 1);
    gw_openapi_builtin(paths, "/readyz", "gateway.Ready",
                       "The database and every service answer (503 if not)",
                       "application/json", 1);
    gw_openapi_builtin(paths, "/metrics", "gateway.Metrics",
                       "Prometheus metrics", "text/plain", 0);
    gw_openapi_builtin(paths, "/openapi.json", "gateway.OpenApi",
                       "This document", "application/json", 0);
    gw_openapi_builtin(paths, "/", "gateway.Console", "The Evidence Console",
                       "text/html", 0);
    json_object_set_new(
        schemas, "Error",
        json_pack("{s:s, s:[s,s,s], s:{s:{s:s}, s:{s:s}, s:{s:s}}}", "type",
                  "object", "required", "detail", "code", "request_id",
                  "properties", "detail", "type", "string", "code", "type",
                  "string", "request_id", "type", "string"));
    json_object_set_new(doc, "paths", paths);
    json_object_set_new(doc, "components",
                        json_pack("{s:o, s:{s:{s:s, s:s, s:s}}}", "schemas",
                                  schemas, "securitySchemes", "bearer", "type",
                                  "http", "scheme", "bearer", "description",
                                  "Required on every registry route when the "
                                  "gateway has a token file "
                                  "(CAVRA_TOKEN_FILE): 401 without a valid "
                                  "token, 403 when its roles do not allow "
                                  "the route. A gateway without one is a "
                                  "loopback-only sandbox and checks none."));
    return doc;
}
