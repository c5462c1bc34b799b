/*
 * cavra_docs.c -- cavra-docs: the parts of the documentation that the
 * code already states, generated from it so they cannot drift: the REST
 * route and field reference and the RPC method table (from the method
 * registry, lib/cv_method.c, and the protobuf-c descriptors), the error
 * table (cv_code_name, cv_code_http_status) and the OpenAPI document
 * (gateway/gw_openapi.c, what GET /openapi.json serves).
 *
 *   cavra-docs openapi      the OpenAPI document on stdout
 *   cavra-docs rest         docs/reference/rest.md on stdout
 *   cavra-docs rpc          docs/reference/rpc-methods.md on stdout
 *   cavra-docs write DIR    writes the three under DIR/reference/
 *   cavra-docs check DIR    exit 1, naming each file that differs from
 *                           what would be written (ctest docs.generated)
 *
 * `make docs` runs `cavra-docs write docs`. Rules, defaults and error
 * texts that live in validation code are in the hand-written docs/api.md.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cv_error.h"
#include "cv_method.h"
#include "cv_transcode.h"
#include "gw_openapi.h"
#include "gw_routes.h"
#include "rpc.pb-c.h"

/* A growing text buffer; out of memory ends the process (a tool). */
typedef struct docs_buf {
    char *s;
    size_t len, cap;
} docs_buf;

static void docs_printf(docs_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
docs_printf(docs_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->s == NULL ? NULL : b->s + b->len,
                      b->s == NULL ? 0 : b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            fprintf(stderr, "cavra-docs: format error\n");
            exit(2);
        }
        if (b->s != NULL && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        if ((b->s = realloc(b->s, b->cap)) == NULL) {
            fprintf(stderr, "cavra-docs: out of memory\n");
            exit(2);
        }
    }
}

/* The anchor GitHub's Markdown gives a heading: lower case, without
 * characters other than letters, digits, '-' and '_'. Static buffer. */
static const char *
docs_anchor(const char *heading)
{
    static char out[2][128];
    static int which;
    char *a = out[which ^= 1];
    size_t n = 0;

    for (; *heading != '\0' && n + 1 < sizeof(out[0]); heading++) {
        unsigned char c = (unsigned char)*heading;

        if (isalnum(c) || c == '-' || c == '_')
            a[n++] = (char)tolower(c);
    }
    a[n] = '\0';
    return a;
}

/* ---- types ---------------------------------------------------------- */

/* The JSON type of one value of field f (cv_transcode.h naming). */
static void
docs_type(docs_buf *b, const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        docs_printf(b, "number");
        break;
    case PROTOBUF_C_TYPE_BOOL:
        docs_printf(b, "boolean");
        break;
    case PROTOBUF_C_TYPE_STRING:
        docs_printf(b, "string");
        break;
    case PROTOBUF_C_TYPE_BYTES:
        docs_printf(b, "string (base64)");
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;

        docs_printf(b, "string: ");
        for (unsigned i = 0, n = 0; i < e->n_values; i++) {
            const char *name = cv_enum_json_name(e, e->values[i].value);

            if (e->values[i].value != 0 && name != NULL)
                docs_printf(b, "%s`%s`", n++ > 0 ? ", " : "", name);
        }
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *m = f->descriptor;

        if (m == &cv__raw_json__descriptor)
            docs_printf(b, "any JSON value");
        else
            docs_printf(b, "object [%s](#%s)", m->short_name,
                        docs_anchor(m->short_name));
        break;
    }
    default:
        docs_printf(b, cv_json_is_integer_type(f->type) ? "integer" : "?");
    }
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        docs_printf(b, " (list)");
}

/* ---- messages ------------------------------------------------------- */

#define DOCS_MESSAGES_MAX 256

typedef struct docs_messages {
    const ProtobufCMessageDescriptor *m[DOCS_MESSAGES_MAX];
    size_t n;
} docs_messages;

/* Adds m and every message it contains (depth first, once each). */
static void
docs_collect(docs_messages *all, const ProtobufCMessageDescriptor *m)
{
    if (m == &cv__raw_json__descriptor)
        return;
    for (size_t i = 0; i < all->n; i++)
        if (all->m[i] == m)
            return;
    if (all->n == DOCS_MESSAGES_MAX) {
        fprintf(stderr, "cavra-docs: more than %d messages\n",
                DOCS_MESSAGES_MAX);
        exit(2);
    }
    all->m[all->n++] = m;
    for (unsigned i = 0; i < m->n_fields; i++)
        if (m->fields[i].type == PROTOBUF_C_TYPE_MESSAGE)
            docs_collect(all, m->fields[i].descriptor);
}

static int
docs_by_name(const void *a, const void *b)
{
    const ProtobufCMessageDescriptor *x =
        *(const ProtobufCMessageDescriptor *const *)a;
    const ProtobufCMessageDescriptor *y =
        *(const ProtobufCMessageDescriptor *const *)b;

    return strcmp(x->short_name, y->short_name);
}

static void
docs_message(docs_buf *b, const ProtobufCMessageDescriptor *m)
{
    docs_printf(b, "### %s\n\n", m->short_name);
    if (m->n_fields == 0) {
        docs_printf(b, "No fields: `{}`.\n\n");
        return;
    }
    docs_printf(b, "| field | type |\n|---|---|\n");
    for (unsigned i = 0; i < m->n_fields; i++) {
        docs_printf(b, "| `%s` | ", m->fields[i].name);
        docs_type(b, &m->fields[i]);
        docs_printf(b, " |\n");
    }
    docs_printf(b, "\n");
}

/* ---- REST reference ------------------------------------------------- */

static int
docs_is_path_param(const char *pattern, const char *name)
{
    char token[64];

    snprintf(token, sizeof(token), "{%s}", name);
    return strstr(pattern, token) != NULL;
}

static void
docs_roles(docs_buf *b, unsigned int roles)
{
    int n = 0;

    for (unsigned int bit = 1; bit <= CV_ROLE_ANY; bit <<= 1)
        if ((roles & bit) != 0 && cv_role_name(bit) != NULL)
            docs_printf(b, "%s`%s`", n++ > 0 ? ", " : "", cv_role_name(bit));
}

static void
docs_errors(docs_buf *b)
{
    docs_printf(b, "## Errors\n\n"
                   "Every error answer is `{\"detail\": \"...\", \"code\": "
                   "\"...\", \"request_id\": \"...\"}`. The RPC code names "
                   "the kind of error; the gateway maps it to one HTTP "
                   "status:\n\n"
                   "| code | RPC number | HTTP status |\n|---|---|---|\n");
    for (int c = CV_CANCELLED; c <= CV_UNAUTHENTICATED; c++)
        docs_printf(b, "| `%s` | %d | %d |\n", cv_code_name(c), c,
                    cv_code_http_status(c));
    docs_printf(b, "\nThe gateway itself also answers 404 (unknown path), 405 "
                   "(wrong method, with `Allow`), 413 (body over 64 KiB), 415 "
                   "(a POST that is not `application/json`), 421 (Host not "
                   "served) and 403 (a POST from a foreign Origin); see "
                   "[api.md](../api.md).\n\n");
}

static char *
docs_rest(void)
{
    docs_buf b = {0};
    docs_messages all = {0};
    size_t n;
    const gw_route *routes = gw_route_table(&n);

    docs_printf(
        &b, "<!-- Generated by `cavra-docs rest` from the method registry "
            "(lib/cv_method.c) and the protobuf descriptors. Do not edit: run "
            "`make docs`. -->\n"
            "# REST route and field reference\n\n"
            "Every route of the gateway, as the method registry declares it, "
            "and every field of its request and reply. JSON keys are the "
            "proto field names; a field that is not set is `null`, an empty "
            "list `[]`; integers are JSON numbers. Defaults, limits and the "
            "error texts of each field are in [api.md](../api.md); the same "
            "routes as OpenAPI 3 are in [openapi.json](openapi.json) (served "
            "at `GET /openapi.json`).\n\n"
            "`P` = `/runtime/go-pilot/rollback-drill-notifications/"
            "acknowledgements/audit-delivery`\n\n"
            "| method | path | RPC | summary |\n|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++) {
        const char *pat = routes[i].pattern;
        const char *p = "/runtime/go-pilot/rollback-drill-notifications/"
                        "acknowledgements/audit-delivery";

        docs_printf(
            &b, "| %s | `%s%s` | [`%s`](#%s) | %s |\n", routes[i].http_method,
            strncmp(pat, p, strlen(p)) == 0 ? "P" : "",
            strncmp(pat, p, strlen(p)) == 0 ? pat + strlen(p) : pat,
            routes[i].rpc, docs_anchor(routes[i].rpc), routes[i].summary);
    }
    docs_printf(&b, "\nOutside the registry: `GET /healthz`, `GET /readyz`, "
                    "`GET /metrics`, `GET /openapi.json`, `GET /` (the "
                    "Evidence Console).\n\n");
    for (size_t i = 0; i < n; i++) {
        const gw_route *r = &routes[i];
        const cv_method_info *m = r->method;
        const ProtobufCMessageDescriptor *req = r->request;
        int get = strcmp(r->http_method, "GET") == 0;
        int params = 0;

        docs_printf(&b, "## %s\n\n`%s %s`\n\n%s.\n\n", r->rpc, r->http_method,
                    r->pattern, r->summary);
        docs_printf(&b, "- service `%s`, %s transaction\n",
                    cv_service_name(m->service), cv_tx_mode_name(m->tx));
        docs_printf(&b, "- roles (with a token file): ");
        docs_roles(&b, r->roles | CV_ROLE_ADMIN);
        docs_printf(&b, "\n- success: %d%s\n", r->status,
                    r->status == 201 ? " when a record was stored, 200 for a "
                                       "replay or an existing record"
                                     : "");
        docs_printf(&b, "- `Idempotency-Key`: %s\n",
                    m->keyed ? "accepted (same key and body replays the "
                               "answer; another body is 409)"
                             : "not used");
        if (r->timeout_ms > 0)
            docs_printf(&b, "- gateway timeout: %d ms\n", r->timeout_ms);
        docs_printf(&b, "- errors: 400, 401, 403%s%s%s, 429, 503, 504\n",
                    docs_is_path_param(r->pattern, "plan_id") ? ", 404" : "",
                    m->keyed ? ", 409" : "", get ? "" : ", 413, 415");
        docs_printf(&b, "\n");
        for (unsigned j = 0; j < req->n_fields; j++) {
            const ProtobufCFieldDescriptor *f = &req->fields[j];
            int in_path = docs_is_path_param(r->pattern, f->name);

            if (!in_path && !get)
                continue;
            if (params++ == 0)
                docs_printf(&b, "| parameter | in | type |\n|---|---|---|\n");
            docs_printf(&b, "| `%s` | %s | ", f->name,
                        in_path ? "path" : "query");
            docs_type(&b, f);
            docs_printf(&b, " |\n");
        }
        if (params > 0)
            docs_printf(&b, "\n");
        if (!get)
            docs_printf(&b, "Body: [%s](#%s). ", req->short_name,
                        docs_anchor(req->short_name));
        docs_printf(&b, "Reply: [%s](#%s).\n\n", r->reply->short_name,
                    docs_anchor(r->reply->short_name));
        if (!get)
            docs_collect(&all, req);
        docs_collect(&all, r->reply);
    }
    docs_errors(&b);
    qsort(all.m, all.n, sizeof(all.m[0]), docs_by_name);
    docs_printf(&b, "## Messages\n\n");
    for (size_t i = 0; i < all.n; i++)
        docs_message(&b, all.m[i]);
    return b.s;
}

/* ---- RPC methods ---------------------------------------------------- */

static char *
docs_rpc(void)
{
    docs_buf b = {0};
    docs_messages all = {0};

    docs_printf(
        &b, "<!-- Generated by `cavra-docs rpc` from the method registry "
            "(lib/cv_method.c) and the protobuf descriptors. Do not edit: run "
            "`make docs`. -->\n"
            "# RPC methods\n\n"
            "Every method of the NNG RPC interface (the envelope and its "
            "signature are in [rpc.md](../rpc.md)). The request and reply are "
            "the packed protobuf messages named here (package `cv`, "
            "`proto/*.proto`); `cavra-rpc` takes and prints them as JSON with "
            "the field names below.\n\n"
            "| method | service | request | reply | roles | transaction | "
            "Idempotency-Key | REST |\n|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < cv_method_count; i++) {
        const cv_method_info *m = &cv_methods[i];

        docs_printf(&b, "| `%s` | %s | [%s](#%s) | [%s](#%s) | ", m->name,
                    cv_service_name(m->service), m->request->short_name,
                    docs_anchor(m->request->short_name), m->reply->short_name,
                    docs_anchor(m->reply->short_name));
        docs_roles(&b, m->roles | CV_ROLE_ADMIN);
        docs_printf(&b, " | %s | %s | ", cv_tx_mode_name(m->tx),
                    m->keyed ? "yes" : "no");
        if (m->http_method != NULL)
            docs_printf(&b, "`%s %s`", m->http_method, m->path);
        else
            docs_printf(&b, "RPC only");
        docs_printf(&b, " |\n");
        docs_collect(&all, m->request);
        docs_collect(&all, m->reply);
    }
    docs_printf(&b, "\nRoles: ");
    docs_roles(&b, CV_ROLE_ANY);
    docs_printf(&b,
                " (`admin` may call every method). A reply's `code` is "
                "the gRPC status number:\n\n| number | code |\n|---|---|\n");
    for (int c = CV_OK; c <= CV_UNAUTHENTICATED; c++)
        docs_printf(&b, "| %d | `%s` |\n", c,
                    c == CV_OK ? "OK" : cv_code_name(c));
    qsort(all.m, all.n, sizeof(all.m[0]), docs_by_name);
    docs_printf(&b, "\n## Messages\n\n");
    for (size_t i = 0; i < all.n; i++)
        docs_message(&b, all.m[i]);
    return b.s;
}

/* ---- OpenAPI -------------------------------------------------------- */

static char *
docs_openapi(void)
{
    json_t *doc = gw_openapi_document();
    char *text = json_dumps(doc, JSON_INDENT(2));
    docs_buf b = {0};

    json_decref(doc);
    if (text == NULL) {
        fprintf(stderr, "cavra-docs: cannot render the OpenAPI document\n");
        exit(2);
    }
    docs_printf(&b, "%s\n", text);
    free(text);
    return b.s;
}

/* ---- files ---------------------------------------------------------- */

typedef struct docs_file {
    const char *name; /* under DIR/reference/ */
    char *(*make)(void);
} docs_file;

static const docs_file docs_files[] = {
    {"rest.md", docs_rest},
    {"rpc-methods.md", docs_rpc},
    {"openapi.json", docs_openapi},
};
#define DOCS_N_FILES (sizeof(docs_files) / sizeof(docs_files[0]))

/* The file's text (malloc'd), or NULL when it cannot be read. */
static char *
docs_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    docs_buf b = {0};
    char chunk[4096];
    size_t n;

    if (f == NULL)
        return NULL;
    docs_printf(&b, "%s", "");
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        docs_printf(&b, "%.*s", (int)n, chunk);
    fclose(f);
    return b.s;
}

static int
docs_write_all(const char *dir, int check)
{
    int differ = 0;

    for (size_t i = 0; i < DOCS_N_FILES; i++) {
        char path[4096];
        char *want = docs_files[i].make(), *have;

        snprintf(path, sizeof(path), "%s/reference/%s", dir,
                 docs_files[i].name);
        if (check) {
            have = docs_read(path);
            if (have == NULL || strcmp(have, want) != 0) {
                fprintf(stderr,
                        "cavra-docs: %s %s what the code generates; run "
                        "`make docs` and commit it\n",
                        path,
                        have == NULL ? "is missing, unlike" : "differs from");
                differ = 1;
            }
            free(have);
        } else {
            FILE *f = fopen(path, "wb");

            if (f == NULL || fputs(want, f) == EOF || fclose(f) != 0) {
                fprintf(stderr, "cavra-docs: cannot write %s: %s\n", path,
                        strerror(errno));
                free(want);
                return 2;
            }
            printf("wrote %s\n", path);
        }
        free(want);
    }
    return differ;
}

static void
docs_usage(FILE *to)
{
    fprintf(to, "usage: cavra-docs openapi | rest | rpc | write DIR | check "
                "DIR\n"
                "  openapi, rest, rpc  print one generated document\n"
                "  write DIR           write DIR/reference/{rest.md,"
                "rpc-methods.md,openapi.json}\n"
                "  check DIR           exit 1 when a file there differs\n");
}

int
main(int argc, char **argv)
{
    char *text = NULL;

    if (argc == 2 && strcmp(argv[1], "openapi") == 0)
        text = docs_openapi();
    else if (argc == 2 && strcmp(argv[1], "rest") == 0)
        text = docs_rest();
    else if (argc == 2 && strcmp(argv[1], "rpc") == 0)
        text = docs_rpc();
    else if (argc == 3 && strcmp(argv[1], "write") == 0)
        return docs_write_all(argv[2], 0);
    else if (argc == 3 && strcmp(argv[1], "check") == 0)
        return docs_write_all(argv[2], 1);
    else if (argc == 2 &&
             (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        docs_usage(stdout);
        return 0;
    } else {
        docs_usage(stderr);
        return 2;
    }
    fputs(text, stdout);
    free(text);
    return 0;
}
